"""The diff report page in Debian's headless Chromium (driven by Playwright):
after a diff that found keys, a viewer reads the verdict, the counts, the
sample keys and the ranges compared, as a person signs them off."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import psycopg
import pytest

from config import KafkaNames, Settings
from tests.e2e.test_diff_and_repair_live import MID, source_url, system, target_url
from tests.support.processes import Processes, eventually
from tests.support.stack import Stack
from tests.support.system import SPEC, VIEWER_TOKEN, api_http, api_url, migration, send_commands

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
__all__ = ["source_url", "system", "target_url"]  # the fixtures this module borrows

if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def test_a_viewer_reads_the_diff_report_page(
    settings: Settings,
    topics: KafkaNames,
    stack: Stack,
    system: Processes,
    target_url: str,
    browser: object,
) -> None:
    start = {"type": "StartMigration", "command_id": "c-1", "migration_id": MID, "spec": SPEC}
    send_commands(stack, topics, start)
    eventually(lambda: migration(settings, MID).get("status") == "COMPLETED", timeout=180)
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute("DELETE FROM customers WHERE id IN (11, 12)")
    status, _ = api_http(
        "POST", f"{api_url(settings)}/migrations/{MID}/diff?wait=true&timeout=30", {}
    )
    assert status == 200
    eventually(lambda: migration(settings, MID).get("status") == "FAILED", timeout=120)

    page = browser.new_page()  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{settings.api.port}"
    page.goto(f"{base}/dashboard#token={VIEWER_TOKEN}")  # the dashboard keeps the token
    page.goto(f"{base}/dashboard/diff?id={MID}")

    expect = sync_api.expect
    expect(page.locator("#verdict")).to_have_text("2 keys differ", timeout=30_000)
    expect(page.locator("#missing")).to_have_text("2")
    expect(page.locator("#samples")).to_contain_text("11, 12")
    expect(page.locator("#phase")).to_contain_text("diff")
    expect(page.locator("#snapshot")).to_contain_text("WAL")
    assert page.locator("#ranges tbody tr").count() >= 16

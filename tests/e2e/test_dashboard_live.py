"""A live migration on the dashboard, in Debian's headless Chromium (driven
by Playwright): SYNCING with its lag and position, the operator's cutover
button, then COMPLETED with what the cutover ended with. Screenshots go to
.local/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import KafkaNames, Settings
from tests.support.phase_simulator import POSITION
from tests.support.processes import ROOT, Processes
from tests.support.system import OPERATOR_TOKEN, SPEC, api_http, api_url, running_system

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / ".local" / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def system(settings: Settings, topics: KafkaNames, tmp_path: Path) -> Iterator[Processes]:
    with running_system(settings, topics, tmp_path, simulator=True, phase_seconds=0.5) as procs:
        yield procs


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def test_an_operator_sees_the_lag_and_cuts_a_live_migration_over(
    settings: Settings, system: Processes, browser: object
) -> None:
    body = {"migration_id": "m-dash-live", "spec": {**SPEC, "cdc": True}}
    status, answer = api_http("POST", f"{api_url(settings)}/migrations?wait=true", body)
    assert (status, answer["outcome"]) == (200, "accepted"), answer
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"http://127.0.0.1:{settings.api.port}/dashboard#token={OPERATOR_TOKEN}")
    expect = sync_api.expect
    row = page.locator('tr[data-id="m-dash-live"]')

    expect(row.locator("td.status")).to_have_text("SYNCING", timeout=60_000)
    expect(row.locator("td.pace .lag")).to_have_text("lag 8.2 kB · 0.8s", timeout=30_000)
    expect(row.locator("td.pace .lag")).to_have_attribute(
        "title", f"source applied up to {POSITION}"
    )
    expect(row.locator('button[data-action="pause"]')).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-syncing.png"), full_page=True)
    row.locator('button[data-action="cutover"]').click()

    expect(row.locator("td.status")).to_have_text("COMPLETED", timeout=60_000)
    expect(row.locator("td.pace .cutover")).to_contain_text("100 rows, checksums equal")
    # a completed migration has nothing to steer but a row-level diff
    actions = [b.get_attribute("data-action") for b in row.locator("button").all()]
    assert actions == ["diff"], actions
    page.screenshot(path=str(ARTIFACTS / "dashboard-cut-over.png"), full_page=True)

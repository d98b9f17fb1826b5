"""The dashboard in Debian's headless Chromium (driven by Playwright): live
status over the WebSocket, and over long polling when WebSockets are blocked;
an operator pauses a migration with its button and sees the status change.
Screenshots go to .local/artifacts/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import KafkaNames, Settings
from tests.support.processes import ROOT, Processes, eventually
from tests.support.system import (
    OPERATOR_TOKEN,
    SPEC,
    VIEWER_TOKEN,
    api_http,
    api_url,
    migration,
    running_system,
)

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / ".local" / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if shutil.which(CHROMIUM) is None:
    pytest.skip(
        "Debian's chromium is not installed (scripts/install-browser could not install it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def system(settings: Settings, topics: KafkaNames, tmp_path: Path) -> Iterator[Processes]:
    with running_system(settings, topics, tmp_path, simulator=True, phase_seconds=4) as procs:
        yield procs


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def start_slow_migration(settings: Settings, name: str) -> str:
    """A migration that stays RUNNING long enough to pause (the simulator takes 4 s a phase)."""
    status, answer = api_http(
        "POST", f"{api_url(settings)}/migrations?wait=true", {"migration_id": name, "spec": SPEC}
    )
    assert (status, answer["outcome"]) == (200, "accepted"), answer
    return name


def open_dashboard(browser: object, settings: Settings, token: str, block_sockets: bool) -> object:
    page = browser.new_page()  # type: ignore[attr-defined]
    if block_sockets:
        page.route_web_socket(re.compile(r".*/api/v1/live.*"), lambda ws: ws.close())
    page.goto(f"http://127.0.0.1:{settings.api.port}/dashboard#token={token}")
    return page


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_an_operator_pauses_a_migration_and_sees_it_live(
    settings: Settings, system: Processes, browser: object, transport: str
) -> None:
    mid = start_slow_migration(settings, f"m-dash-{transport}")
    page = open_dashboard(browser, settings, OPERATOR_TOKEN, block_sockets=transport == "polling")
    expect = sync_api.expect
    row = page.locator(f'tr[data-id="{mid}"]')  # type: ignore[attr-defined]

    expect(page.locator("#transport")).to_have_attribute(  # type: ignore[attr-defined]
        "data-transport", transport, timeout=30_000
    )
    expect(page.locator("#role")).to_have_text("operator")  # type: ignore[attr-defined]
    expect(row.locator("td.status")).to_have_text("RUNNING", timeout=30_000)
    row.locator('button[data-action="pause"]').click()

    expect(row.locator("td.status")).to_have_text("PAUSED", timeout=60_000)
    expect(row.locator('button[data-action="resume"]')).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{transport}.png"), full_page=True)  # type: ignore[attr-defined]
    assert migration(settings, mid)["status"] == "PAUSED"


def test_progress_arrives_live_and_a_viewer_gets_no_buttons(
    settings: Settings, system: Processes, browser: object
) -> None:
    page = open_dashboard(browser, settings, VIEWER_TOKEN, block_sockets=False)
    expect = sync_api.expect
    expect(page.locator("#transport")).to_have_attribute(  # type: ignore[attr-defined]
        "data-transport", "websocket", timeout=30_000
    )
    mid = start_slow_migration(settings, "m-dash-viewer")
    row = page.locator(f'tr[data-id="{mid}"]')  # type: ignore[attr-defined]

    expect(row.locator("td.status")).to_have_text("COMPLETED", timeout=90_000)
    expect(row.locator("td.progress")).to_contain_text("100/100")
    assert row.locator("button").count() == 0
    assert eventually(lambda: migration(settings, mid).get("status") == "COMPLETED")

"""The dashboard says why: in Debian's headless Chromium (Playwright), against
the API served in-process over a projected read model. A failed migration
shows its reason, and its events a click away; a phase without a row count
shows its rows or a dash, not 0/0; a running one shows its bytes, rates and
ETA; and a page opened without a token asks nothing that answers 401. A
screenshot goes to .local/artifacts/."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from config import KafkaNames, Settings
from domain import events as ev
from tests.support.event_log import interleaved, paced, projecting, until, write_log
from tests.support.processes import ROOT
from tests.support.read_side import SPEC, VIEWER, lifecycle, serving, with_tokens

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SHOT = ROOT / ".local" / "artifacts" / "dashboard-reasons.png"
FAILED = "transform failed: simulated outage"

if shutil.which(CHROMIUM) is None:
    pytest.skip(
        "Debian's chromium is not installed (scripts/install-browser could not install it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")


MIDS = ("m-failed", "m-counting", "m-waiting", "m-pacing")


def histories() -> list[list[ev.Event]]:
    """Failed in transform; counting rows of a phase without a total; just
    started; half way through extract at a known pace."""
    failed = lifecycle("m-failed", replace(SPEC, source_table="flaky_customers"))
    started, requested, progress = lifecycle("m-counting")[:3]
    assert isinstance(progress, ev.PhaseProgressRecorded)
    counting = [started, requested, replace(progress, rows_done=1234, rows_total=0)]
    return [failed, counting, lifecycle("m-waiting")[:2], paced("m-pacing")]


def browse(url: str, visit: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            return visit(browser.new_page(viewport={"width": 1400, "height": 700}))
        finally:
            browser.close()


def before_a_token(url: str) -> Callable[[Any], dict[str, Any]]:
    """Open the page without a token, recording every answer; then enter one."""

    def visit(page: Any) -> dict[str, Any]:
        answers: list[tuple[int, str]] = []
        page.on("response", lambda r: answers.append((r.status, r.url)))
        page.goto(f"{url}/dashboard")
        sync_api.expect(page.locator("#message")).to_contain_text("enter a token")
        before = list(answers)
        page.fill("#token", VIEWER)
        page.click("#login button")
        page.locator('tr[data-id="m-failed"]').wait_for(timeout=30_000)
        return {"before": before, "role": page.locator("#role").inner_text()}

    return visit


def the_rows(url: str) -> Callable[[Any], dict[str, Any]]:
    """What the rows show; the failed migration's events, opened."""

    def visit(page: Any) -> dict[str, Any]:
        page.goto(f"{url}/dashboard#token={VIEWER}")
        row = page.locator('tr[data-id="m-failed"]')
        sync_api.expect(row.locator("td.status")).to_contain_text("FAILED", timeout=30_000)
        reason = row.locator("td.status").inner_text().removeprefix("FAILED").strip()
        cells = {
            (mid, name): page.locator(f'tr[data-id="{mid}"] td.{name}').inner_text().strip()
            for mid in MIDS
            for name in ("progress", "pace")
        }
        row.locator("a.events").click()
        events = page.locator('tr.events[data-for="m-failed"] li')
        sync_api.expect(events.last).to_contain_text("MigrationFailed")
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOT), full_page=True)
        return {
            "reason": reason,
            "progress": {mid: cells[mid, "progress"] for mid in MIDS},
            "pace": {mid: cells[mid, "pace"] for mid in MIDS},
            "last_event": events.last.inner_text(),
        }

    return visit


@pytest.fixture
async def dashboard(settings: Settings, topics: KafkaNames) -> AsyncIterator[str]:
    """The API, in-process, over a read model with a failed, a counting and a
    just-started migration."""
    log = interleaved(histories())
    await asyncio.to_thread(write_log, settings, topics, log)
    settings = with_tokens(settings)
    async with projecting(settings) as projector:
        await until(
            settings, "SELECT sum(next_offset) FROM projection_offsets", len(log), projector
        )
        async with serving(settings) as url:
            yield url


async def test_a_page_opened_without_a_token_asks_nothing_that_answers_401(
    dashboard: str,
) -> None:
    shown = await asyncio.to_thread(browse, dashboard, before_a_token(dashboard))

    before = shown["before"]
    assert (200, f"{dashboard}/api/v1/whoami") in before
    assert [a for a in before if a[0] >= 400 and not a[1].endswith("/favicon.ico")] == []
    assert shown["role"] == "viewer"


async def test_a_row_says_why_it_failed_and_counts_what_it_can(dashboard: str) -> None:
    shown = await asyncio.to_thread(browse, dashboard, the_rows(dashboard))

    assert shown["reason"] == FAILED
    assert shown["progress"] == {
        "m-failed": "—",
        "m-counting": "1,234 rows",
        "m-waiting": "—",
        "m-pacing": "50/100",
    }
    assert shown["pace"] == {
        "m-failed": "10.0 kB",  # extract's bytes; transform failed before it counted any
        "m-counting": "5.0 kB",  # no time passed: no rate
        "m-waiting": "",
        "m-pacing": "5.0 kB · 5 rows/s · 500 bytes/s\nextract ETA 10s",
    }
    assert shown["last_event"].startswith("MigrationFailed")
    assert shown["last_event"].endswith(f"— {FAILED}")

"""The dashboard shows a quarantined migration: in Debian's headless Chromium
(Playwright), against the API served in-process over a read model with a
gapped migration among healthy ones. A screenshot goes to
.local/artifacts/dashboard-quarantine.png."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from config import KafkaNames, Settings
from tests.support.event_log import interleaved, projecting, until, write_log
from tests.support.processes import ROOT
from tests.support.read_side import VIEWER, lifecycle, serving, with_tokens

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SHOT = ROOT / ".local" / "artifacts" / "dashboard-quarantine.png"

if shutil.which(CHROMIUM) is None:
    pytest.skip(
        "Debian's chromium is not installed (scripts/install-browser could not install it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")


def look(url: str) -> dict[str, str]:
    """What the page shows for the quarantined migration, once it shows one."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 520})
            page.goto(f"{url}/dashboard#token={VIEWER}")
            row = page.locator('tr[data-quarantined="true"]')
            row.locator("span.quarantine").wait_for(timeout=30_000)
            SHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOT))
            return {
                "id": row.locator("td.id").inner_text(),
                "reason": row.locator(".quarantine-reason").inner_text(),
                "count": page.locator("#quarantined").inner_text(),
                "healthy": str(page.locator('tr[data-quarantined="false"]').count()),
            }
        finally:
            browser.close()


async def test_the_dashboard_marks_a_quarantined_migration_with_its_reason(
    settings: Settings, topics: KafkaNames
) -> None:
    # given: a read model with one gapped migration among healthy ones
    gap = lifecycle("m-gap")
    log = interleaved([[*gap[:3], *gap[5:]], *(lifecycle(f"m-ok-{i}") for i in range(3))])
    await asyncio.to_thread(write_log, settings, topics, log)
    settings = with_tokens(settings)
    async with projecting(settings) as projector:
        await until(
            settings, "SELECT sum(next_offset) FROM projection_offsets", len(log), projector
        )

        # when: a viewer opens the dashboard
        async with serving(settings) as url:
            shown = await asyncio.to_thread(look, url)

    # then
    assert shown == {
        "id": "m-gap",
        "reason": "gap: expected sequence 4, got 6",
        "count": "1 quarantined",
        "healthy": "3",
    }

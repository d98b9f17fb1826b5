"""The diff routes against the real broker, orchestrator worker, projector
and database (a simulated phase worker, which takes no diff): a report
that is not there yet is a 404 saying so; a repair without a diff is
refused with the reason; a viewer reads reports and may not ask for one."""

from __future__ import annotations

import pytest

from tests.integration.test_api import System, module_settings, system
from tests.support.read_side import VIEWER

pytestmark = pytest.mark.integration
__all__ = ["module_settings", "system"]  # the fixtures this module borrows


async def test_a_completed_migration_without_a_diff_has_no_report_and_nothing_to_repair(
    system: System,
) -> None:
    mid = await system.start()
    await system.until(mid, "COMPLETED")

    status, missing = await system.call("GET", f"/api/v1/migrations/{mid}/diff", VIEWER)
    refused_status, refused = await system.call(
        "POST", f"/api/v1/migrations/{mid}/repair?wait=true&timeout=30", body={}
    )

    assert status == 404 and "no diff of migration" in missing["title"]
    assert refused_status == 409 and refused["outcome"] == "rejected"
    assert refused["detail"] == "nothing to repair: no diff was taken yet (run a diff first)"


async def test_a_viewer_may_not_ask_for_a_diff_or_a_repair(system: System) -> None:
    mid = await system.start()

    for kind in ("diff", "repair"):
        status, _ = await system.call("POST", f"/api/v1/migrations/{mid}/{kind}", VIEWER, body={})
        assert status == 403


async def test_a_diff_of_a_running_migration_is_refused(system: System) -> None:
    mid = await system.start()

    status, refused = await system.call(
        "POST", f"/api/v1/migrations/{mid}/diff?wait=true&timeout=30", body={}
    )

    assert status == 409
    assert "only a COMPLETED migration, or one FAILED after its load, can diff" in refused["detail"]


async def test_a_report_of_an_unknown_migration_is_a_404(system: System) -> None:
    status, body = await system.call("GET", "/api/v1/migrations/m-nobody/diff", VIEWER)

    assert status == 404 and "no migration" in body["title"]

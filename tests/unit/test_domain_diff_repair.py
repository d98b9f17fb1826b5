"""decide and evolve for a row-level diff and its repair: DiffMigration and
RepairMigration are asked of a loaded migration; a DiffTaken result is
recorded; a diff or repair phase ends the migration COMPLETED when no key
differs, FAILED otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from domain import (
    CommandRejected,
    DiffMigration,
    DiffRecorded,
    DiffTaken,
    MigrationCompleted,
    MigrationFailed,
    MigrationState,
    Phase,
    PhaseCompleted,
    PhaseRequested,
    RepairMigration,
    RunPhase,
    Status,
)
from tests.unit.test_domain import (
    MID,
    completed,
    errored,
    failed,
    paused,
    rejected,
    running,
    succeeded,
    tasks,
    then,
    unknown,
    when,
)


def diff(command_id: str = "c-diff") -> DiffMigration:
    return DiffMigration(command_id=command_id, migration_id=MID)


def repair(command_id: str = "c-repair") -> RepairMigration:
    return RepairMigration(command_id=command_id, migration_id=MID)


def taken(s: MigrationState, differing: int, rid: str = "r-diff", **more: Any) -> DiffTaken:
    assert s.phase is not None
    return DiffTaken(
        result_id=rid,
        migration_id=MID,
        phase=s.phase,
        run=s.run,
        missing=differing,
        differing=differing,
        samples={"missing": [str(k) for k in range(min(differing, 10))]},
        **more,
    )


def diffed(s: MigrationState, differing: int) -> MigrationState:
    """`s` after a diff phase that found `differing` keys."""
    s = then(s, diff(f"c-diff-{s.version}"))
    s = then(s, taken(s, differing, rid=f"r-diff-{s.version}"))
    return then(s, succeeded(s, rid=f"r-diffed-{s.version}"))


def failed_at_reconcile(differing: int) -> MigrationState:
    s = running()
    for n in range(4):
        s = then(s, succeeded(s, rid=f"r-done-{n}"))
    assert s.phase is Phase.RECONCILE
    s = then(s, taken(s, differing))
    return then(s, errored(s, checkpoint=None))


def test_a_diff_of_a_completed_migration_runs_the_diff_phase() -> None:
    s = completed()

    events, after = when(s, diff())

    (requested,) = events
    assert isinstance(requested, PhaseRequested) and requested.phase == "diff"
    assert requested.run == s.run + 1
    assert after.status is Status.RUNNING and after.phase is Phase.DIFF
    (task,) = tasks(s, events)
    assert isinstance(task, RunPhase) and task.phase == "diff"


def test_a_diff_taken_is_recorded_with_its_figures() -> None:
    s = then(completed(), diff())
    result = taken(s, 3, extra=1, source_rows=10, target_rows=8, taken_at="now")

    events, after = when(s, result)

    (recorded,) = events
    assert isinstance(recorded, DiffRecorded)
    assert (recorded.phase, recorded.missing, recorded.extra, recorded.differing) == (
        "diff",
        3,
        1,
        3,
    )
    assert recorded.samples == {"missing": ["0", "1", "2"]}
    assert (recorded.source_rows, recorded.target_rows, recorded.taken_at) == (10, 8, "now")
    assert after.differing == 3 and "r-diff" in after.seen_results


def test_a_diff_that_finds_nothing_completes_the_migration_again() -> None:
    s = then(completed(), diff())
    s = then(s, taken(s, 0))

    events, after = when(s, succeeded(s, rid="r-diffed"))

    assert [type(e) for e in events] == [PhaseCompleted, MigrationCompleted]
    assert after.status is Status.COMPLETED and after.phase is Phase.DIFF


def test_a_diff_that_finds_differing_keys_fails_the_migration() -> None:
    s = then(completed(), diff())
    s = then(s, taken(s, 6))

    events, after = when(s, succeeded(s, rid="r-diffed"))

    assert [type(e) for e in events] == [PhaseCompleted, MigrationFailed]
    assert after.status is Status.FAILED and after.reason == "diff: 6 keys differ"


def test_a_repair_of_a_migration_whose_diff_differs_runs_the_repair_phase() -> None:
    s = diffed(completed(), 6)

    events, after = when(s, repair())

    (requested,) = events
    assert isinstance(requested, PhaseRequested) and requested.phase == "repair"
    assert after.status is Status.RUNNING and after.phase is Phase.REPAIR


def test_a_repair_whose_second_diff_is_clean_completes_the_migration() -> None:
    s = then(diffed(completed(), 6), repair())
    s = then(s, taken(s, 0, rid="r-after"))

    events, after = when(s, succeeded(s, rid="r-repaired"))

    assert [type(e) for e in events] == [PhaseCompleted, MigrationCompleted]
    assert after.status is Status.COMPLETED and after.differing == 0


def test_a_reconcile_that_failed_with_a_diff_can_be_repaired() -> None:
    s = failed_at_reconcile(4)
    assert s.status is Status.FAILED and s.differing == 4

    (requested,) = when(s, repair())[0]

    assert isinstance(requested, PhaseRequested) and requested.phase == "repair"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (lambda: diffed(completed(), 0), "nothing to repair: the last diff found no differing"),
        (completed, "nothing to repair: no diff was taken yet"),
        (running, "only a COMPLETED migration, or one FAILED after its load, can repair"),
        (paused, "only a COMPLETED migration, or one FAILED after its load, can repair"),
        (failed, "it failed in extract, before its load"),
        (unknown, "no migration m-1"),
    ],
)
def test_a_repair_with_nothing_to_repair_or_in_the_wrong_state_is_rejected(
    given: Any, reason: str
) -> None:
    event = rejected(given(), repair())

    assert isinstance(event, CommandRejected) and reason in event.reason


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (running, "can diff; it is RUNNING"),
        (failed, "it failed in extract, before its load"),
        (unknown, "no migration m-1"),
    ],
)
def test_a_diff_of_a_migration_not_loaded_or_busy_is_rejected(given: Any, reason: str) -> None:
    assert reason in rejected(given(), diff()).reason


def test_a_diff_result_of_an_older_run_is_stale() -> None:
    s = then(completed(), diff())
    old = taken(s, 5)
    stale = DiffTaken(**{**old.__dict__, "run": s.run - 1})

    assert when(s, stale)[0] == ()


def test_a_repeated_diff_command_causes_nothing() -> None:
    s = then(completed(), diff())

    assert when(s, diff())[0] == ()

"""When a finished migration's state is retired (domain.retention), what a
retired migration answers, and how its id and version are kept
(streams.orchestrator.retired): pure, no broker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain import (
    CancelMigration,
    CommandRejected,
    MigrationSpec,
    MigrationState,
    PauseMigration,
    PhaseSucceeded,
    StartMigration,
    Status,
    decide,
    evolve,
)
from domain.retention import finished_since, retired, retirement_due
from streams.orchestrator.retired import CHUNK_ENTRIES, MERGE_AT, RetiredIds, chunk_key
from streams.orchestrator.state_store import PartitionStates

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)
AT = "2026-03-01T12:00:00.000+00:00"
FINISHED = datetime(2026, 3, 1, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


def _fold(state: MigrationState, *events: object) -> MigrationState:
    for event in events:
        state = evolve(state, event)  # type: ignore[arg-type]
    return state


def started(mid: str = "m-1") -> MigrationState:
    cmd = StartMigration(command_id="c-start", migration_id=mid, spec=SPEC)
    state = MigrationState(mid)
    return _fold(state, *decide(state, cmd, "2026-03-01T11:00:00.000+00:00"))


def cancelled(mid: str = "m-1") -> MigrationState:
    state = started(mid)
    return _fold(state, *decide(state, CancelMigration(command_id="c-x", migration_id=mid), AT))


@pytest.mark.parametrize(
    ("age", "due"),
    [(WEEK - timedelta(seconds=1), False), (WEEK, True), (WEEK + timedelta(days=30), True)],
)
def test_a_cancelled_migration_is_due_once_the_retention_has_passed(
    age: timedelta, due: bool
) -> None:
    state = cancelled()
    assert state.status is Status.CANCELLED and state.finished_at == AT
    assert retirement_due(state, FINISHED + age, WEEK) is due


def test_a_completed_migration_is_due_from_the_time_it_completed() -> None:
    state = _fold(
        started(),
        *decide(
            started(),
            PhaseSucceeded(
                result_id="r-1", migration_id="m-1", phase="extract", run=1, rows_done=1
            ),
            "2026-03-01T11:30:00.000+00:00",
        ),
    )
    assert state.status is Status.RUNNING  # extract done; more phases to go
    assert finished_since(state) is None
    done = MigrationState("m-1", status=Status.COMPLETED, spec=SPEC, finished_at=AT)
    assert finished_since(done) == FINISHED
    assert retirement_due(done, FINISHED + WEEK, WEEK)


@pytest.mark.parametrize(
    "status", [Status.PENDING, Status.RUNNING, Status.PAUSING, Status.PAUSED, Status.FAILED]
)
def test_a_migration_not_finished_for_good_is_never_due(status: Status) -> None:
    """FAILED included: it can be retried at any time."""
    state = MigrationState("m-1", status=status, spec=SPEC, finished_at=AT)
    assert not retirement_due(state, FINISHED + 100 * WEEK, WEEK)


def test_a_finished_state_that_does_not_say_when_is_due_at_once() -> None:
    state = MigrationState("m-1", status=Status.COMPLETED, spec=SPEC)
    assert retirement_due(state, datetime.now(UTC), WEEK)


def test_a_retired_migration_is_never_due_again() -> None:
    assert not retirement_due(retired(cancelled()), FINISHED + 100 * WEEK, WEEK)


def test_what_is_kept_of_a_retired_migration_is_its_id_and_version() -> None:
    state = cancelled()
    kept = retired(state)
    assert kept == MigrationState("m-1", version=state.version, retired=True)
    assert not kept.exists


@pytest.mark.parametrize(
    "command",
    [
        PauseMigration(command_id="c-new", migration_id="m-1"),
        StartMigration(command_id="c-start", migration_id="m-1", spec=SPEC),  # an old id again
        CancelMigration(command_id="c-x", migration_id="m-1"),
    ],
)
def test_a_command_for_a_retired_migration_is_rejected_as_retired(command: object) -> None:
    kept = retired(cancelled())
    events = decide(kept, command, AT)  # type: ignore[arg-type]
    assert len(events) == 1 and isinstance(events[0], CommandRejected)
    assert events[0].sequence == kept.version + 1
    assert "retired" in events[0].reason and "m-1" in events[0].reason
    after = evolve(kept, events[0])
    assert after.retired and after.version == kept.version + 1 and not after.exists


def test_a_phase_result_for_a_retired_migration_causes_nothing() -> None:
    kept = retired(cancelled())
    result = PhaseSucceeded(
        result_id="r-9", migration_id="m-1", phase="extract", run=1, rows_done=1
    )
    assert decide(kept, result, AT) == ()


# --- the retired ids --------------------------------------------------------------------


def test_retired_ids_remember_versions_across_merges() -> None:
    ids = RetiredIds()
    n = MERGE_AT * 2 + 10
    for i in range(n):
        ids.add(f"m-{i}", i + 1)
    ids.add("m-3", 99)  # retired again, after a rejection
    assert len(ids) == n
    assert ids.version("m-3") == 99
    assert ids.version(f"m-{n - 1}") == n
    assert ids.version("never") is None


def test_retired_ids_are_written_in_chunks_and_read_back() -> None:
    ids = RetiredIds()
    for i in range(CHUNK_ENTRIES + 5):
        ids.add(f"m-{i}", 7)
    records = ids.records()
    assert [k for k, _ in records] == [chunk_key(0), chunk_key(1)]
    ids.written()
    assert ids.records() == []
    pending = ids.records([("m-extra", 3)])  # only the last chunk is written again
    assert [k for k, _ in pending] == [chunk_key(1)]

    again = RetiredIds()
    for key, value in reversed(records):  # in any order
        again.load_chunk(int(key.split(b":")[1]), value)
    again.loaded()
    assert len(again) == CHUNK_ENTRIES + 5
    assert again.version("m-0") == 7 and again.version(f"m-{CHUNK_ENTRIES + 4}") == 7
    assert again.version("m-extra") is None
    assert again.records() == []


def test_a_partition_counts_active_migrations_as_states_come_and_go() -> None:
    part = PartitionStates()
    part.put(started("m-1"))
    part.put(started("m-2"))
    assert part.active == 2
    part.put(cancelled("m-1"))
    assert part.active == 1 and set(part.finished) == {"m-1"}
    part.put(retired(cancelled("m-1")))
    assert part.active == 1 and part.finished == {} and "m-1" not in part.states
    assert part.retired.version("m-1") == cancelled("m-1").version


def test_a_finished_migration_running_again_is_not_due_until_it_finishes_again() -> None:
    part = PartitionStates()
    done = replace(started("m-1"), status=Status.COMPLETED, finished_at=AT)
    part.put(done)
    assert set(part.finished) == {"m-1"}
    part.put(replace(done, status=Status.RUNNING))  # a diff or repair of it runs
    assert part.finished == {} and part.active == 1
    later = "2026-03-09T12:00:00.000+00:00"
    part.put(replace(done, finished_at=later))  # the diff ended: its clock starts again
    assert part.finished == {"m-1": datetime.fromisoformat(later).timestamp()}

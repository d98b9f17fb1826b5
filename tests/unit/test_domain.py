"""The pure domain: decide and evolve, without any I/O."""

from __future__ import annotations

import pytest

from streams.domain import (
    CommandRejected,
    MigrationSpec,
    MigrationStarted,
    MigrationState,
    StartMigration,
    Status,
    decide,
    evolve,
    replay,
)

SPEC = MigrationSpec("legacy", "customers", "id", "warehouse", "customers")
AT = "2026-01-01T00:00:00.000+00:00"


def start(command_id: str = "c-1", migration_id: str = "m-1") -> StartMigration:
    return StartMigration(command_id, migration_id, SPEC)


def test_start_of_a_new_migration_emits_started_with_sequence_1() -> None:
    (event,) = decide(MigrationState("m-1"), start(), AT)

    assert isinstance(event, MigrationStarted)
    assert (event.sequence, event.event_id, event.causation_id) == (1, "m-1:1", "c-1")
    assert event.spec == SPEC and event.occurred_at == AT


def test_started_migration_is_running_at_version_1() -> None:
    state = replay("m-1", decide(MigrationState("m-1"), start(), AT))

    assert state.status is Status.RUNNING
    assert state.version == 1
    assert state.spec == SPEC


def test_a_repeated_command_has_no_second_effect() -> None:
    state = replay("m-1", decide(MigrationState("m-1"), start(), AT))

    assert decide(state, start(), AT) == ()


def test_starting_an_existing_migration_is_rejected_with_a_reason() -> None:
    state = replay("m-1", decide(MigrationState("m-1"), start(), AT))

    (event,) = decide(state, start(command_id="c-2"), AT)

    assert isinstance(event, CommandRejected)
    assert event.sequence == 2
    assert "already exists" in event.reason
    after = evolve(state, event)
    assert (after.status, after.version, after.spec) == (Status.RUNNING, 2, SPEC)


def test_evolve_refuses_a_gap_or_a_duplicate() -> None:
    (event,) = decide(MigrationState("m-1"), start(), AT)
    state = evolve(MigrationState("m-1"), event)

    with pytest.raises(ValueError, match="sequence 1 after version 1"):
        evolve(state, event)

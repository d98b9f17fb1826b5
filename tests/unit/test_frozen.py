"""The fast replace of frozen dataclasses gives what dataclasses.replace gives."""

from __future__ import annotations

import dataclasses

import pytest

from domain import MigrationState, Phase, Status
from domain.frozen import replace
from projections.fold import PhaseRow, Row


def test_replace_equals_the_dataclasses_one_and_leaves_the_original() -> None:
    state = MigrationState(migration_id="m-1", seen=frozenset({"c-1"}))
    changes = {"status": Status.RUNNING, "phase": Phase.LOAD, "version": 7, "reason": None}

    copy = replace(state, **changes)

    assert copy == dataclasses.replace(state, **changes)
    assert type(copy) is MigrationState
    assert state == MigrationState(migration_id="m-1", seen=frozenset({"c-1"}))
    assert hash(copy) == hash(dataclasses.replace(state, **changes))


def test_a_copy_stays_frozen() -> None:
    copy = replace(Row(state=MigrationState(migration_id="m-1")), updated_at="2026-01-01")

    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.updated_at = "later"  # type: ignore[misc]


def test_a_name_that_is_no_field_is_refused() -> None:
    row = PhaseRow("m-1", "load", "RUNNING", 1, "t0", "t0")  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="no field"):
        replace(row, rows_doen=5)

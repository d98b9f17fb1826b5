"""The fast replace of frozen dataclasses gives what dataclasses.replace gives;
the read model's rows (msgspec structs) copy with msgspec's."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from domain import MigrationState, Phase, PhaseStatus, Status
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
    copy = replace(MigrationState(migration_id="m-1"), reason="paused")

    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.reason = "later"  # type: ignore[misc]


def test_a_name_that_is_no_field_is_refused() -> None:
    state = MigrationState(migration_id="m-1")

    with pytest.raises(TypeError, match="no field"):
        replace(state, rows_doen=5)


def test_the_read_models_rows_copy_with_msgspec_and_stay_frozen() -> None:
    row = PhaseRow("m-1", "load", PhaseStatus.RUNNING, 1, "t0", "t0")

    copy = msgspec.structs.replace(row, rows_done=5)

    assert (copy.rows_done, row.rows_done) == (5, 0)
    with pytest.raises(AttributeError):
        copy.rows_done = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        msgspec.structs.replace(Row(state=MigrationState(migration_id="m-1")), updated=1)

"""The domain's types say what they hold.

- Records are built by keyword; a record's `type` is its class name and
  cannot be set.
- Phases, statuses, stop reasons and rule kinds are enums whose values are
  the strings the records, the changelog and the read model always carried.
- The changelog state decodes into the enums; a value that names no member
  is a RecordError naming the field.
"""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from domain import (
    LIVE_PHASES,
    PHASES,
    CutoverOptions,
    ErrorKind,
    MigrationSpec,
    MigrationState,
    Phase,
    PhaseStatus,
    PhaseSucceeded,
    RunPhase,
    StartMigration,
    Status,
    StopReason,
    next_phase,
)
from domain.errors import SpecError
from domain.spec import RuleKind, parse_rule
from schemas import RecordError
from schemas.state import state_from_plain, state_to_plain
from tests.fixtures.samples import SAMPLES

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)


def test_a_record_is_built_by_keyword_only() -> None:
    with pytest.raises(TypeError):
        StartMigration("c-1", "m-1", SPEC)  # type: ignore[misc]
    with pytest.raises(TypeError):
        MigrationSpec("legacy", "customers", "id", "warehouse", "customers")  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_record_type_is_its_class_name_and_cannot_be_set(name: str) -> None:
    record = SAMPLES[name]

    assert record.type == name
    with pytest.raises((AttributeError, FrozenInstanceError)):
        record.type = "Other"  # type: ignore[misc]


def test_type_is_not_a_constructor_argument() -> None:
    with pytest.raises(TypeError):
        StartMigration(command_id="c", migration_id="m", spec=SPEC, type="Other")  # type: ignore[call-arg]


def test_the_enums_keep_the_strings_on_the_wire() -> None:
    assert PHASES == ("extract", "transform", "validate", "load", "reconcile")
    assert tuple(Phase) == (*PHASES, *LIVE_PHASES, "diff", "repair")
    assert LIVE_PHASES == ("sync", "cutover")
    assert ErrorKind.SCHEMA_DRIFTED == "schema_drifted"
    assert set(PhaseStatus) == {"RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"}
    assert set(StopReason) == {"superseded", "pause", "cancel", "revoked", "shutdown"}
    kinds = {"not_null", "unique", "range", "pattern", "allowed", "foreign_key"}
    assert set(RuleKind) == kinds


def test_the_next_phase_is_an_enum_member() -> None:
    assert next_phase("extract") is Phase.TRANSFORM
    assert next_phase(Phase.RECONCILE) is None
    with pytest.raises(ValueError):
        next_phase("copy")


def test_a_result_names_its_phase_as_the_task_did() -> None:
    task = RunPhase(task_id="t", migration_id="m", phase=Phase.LOAD, run=1, spec=SPEC)
    result = PhaseSucceeded(result_id="r", migration_id="m", phase="load", run=1, rows_done=1)

    assert result.phase == task.phase == Phase.LOAD


def test_a_parsed_rule_has_its_kind_as_an_enum() -> None:
    rule = parse_rule(0, {"rule": "range", "column": "age", "min": 0})

    assert rule.kind is RuleKind.RANGE
    assert rule.name == "range(age)"


def test_an_unknown_rule_kind_lists_the_kinds_by_name() -> None:
    with pytest.raises(SpecError) as caught:
        parse_rule(0, {"rule": "sometimes", "column": "a"})

    assert str(caught.value) == (
        "rules[0].rule must be one of ['allowed', 'foreign_key', 'not_null', 'pattern',"
        " 'range', 'unique'], not 'sometimes'"
    )


def _plain_state(**changes: Any) -> dict[str, Any]:
    state = MigrationState(migration_id="m-1", status=Status.RUNNING, spec=SPEC, phase=Phase.LOAD)
    return {**state_to_plain(state), **changes}


def test_the_changelog_state_reads_into_the_enums() -> None:
    state = state_from_plain(_plain_state())

    assert state.status is Status.RUNNING
    assert state.phase is Phase.LOAD
    assert state_to_plain(state)["phase"] == "load"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"status": "SLEEPING"}, "state.status"), ({"phase": "copy"}, "state.phase")],
)
def test_a_changelog_state_naming_no_member_is_a_record_error(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordError, match=f"^{field} must be one of "):
        state_from_plain(_plain_state(**changes))


def test_a_live_state_round_trips_through_the_changelog_form() -> None:
    live = MigrationState(
        migration_id="m-1",
        status=Status.CUTTING_OVER,
        spec=replace(SPEC, cdc=True),
        phase=Phase.CUTOVER,
        lag_bytes=4096,
        lag_seconds=0.25,
        position="0/3000060",
        cutover=CutoverOptions(max_lag_bytes=1024, max_lag_seconds=None, freeze=True),
    )

    plain = json.loads(json.dumps(state_to_plain(live)))

    assert plain["cutover"] == {"max_lag_bytes": 1024, "max_lag_seconds": None, "freeze": True}
    assert state_from_plain(plain) == live


def test_a_state_written_before_the_live_fields_reads_without_them() -> None:
    plain = _plain_state()
    for name in ("lag_bytes", "lag_seconds", "position", "cutover"):
        del plain[name]

    state = state_from_plain(plain)

    assert (state.lag_bytes, state.position, state.cutover) == (None, None, None)

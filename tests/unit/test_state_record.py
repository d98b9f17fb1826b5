"""The orchestrator's changelog record of a state: its JSON text holds what
`state_to_plain` holds, and reads back as the same state."""

from __future__ import annotations

import json

import pytest

from domain import CutoverOptions, MigrationSpec, MigrationState, Phase, Status
from schemas.state import state_from_plain, state_to_json, state_to_plain

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
    mapping={"id": "cid", "name": {"to": "full_name", "transform": "trim"}},
    rules=({"field": "email", "rule": "not_null"},),
)
STATES = [
    MigrationState("m-new"),
    MigrationState(
        "m-running",
        status=Status.RUNNING,
        version=7,
        spec=SPEC,
        phase=Phase.LOAD,
        run=3,
        checkpoint="k:42",
        rows_done=10,
        rows_total=20,
        score=0.5,
        seen=frozenset({"c-2", "c-1"}),
        seen_results=frozenset({"r-1"}),
    ),
    MigrationState(
        "m-done",
        status=Status.CANCELLED,
        version=4,
        spec=SPEC,
        finished_at="2026-03-01T12:00:00.000+00:00",
    ),
    MigrationState("m-retired", version=5, retired=True),
    MigrationState(
        "m-cutting-over",
        status=Status.CUTTING_OVER,
        version=9,
        spec=SPEC,
        phase=Phase.CUTOVER,
        lag_bytes=4096,
        lag_seconds=0.5,
        position="0/16B3748",
        cutover=CutoverOptions(max_lag_bytes=0, freeze=True),
    ),
]


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.migration_id)
def test_the_changelog_text_is_the_plain_form_and_reads_back(state: MigrationState) -> None:
    text = state_to_json(state)
    assert json.loads(text) == state_to_plain(state)
    assert state_from_plain(json.loads(text)) == state
    assert state_to_json(state) == text  # the spec's text, kept, is the same text


def test_a_record_written_before_retention_existed_still_reads() -> None:
    plain = state_to_plain(STATES[1])
    del plain["finished_at"], plain["retired"]
    assert state_from_plain(plain) == STATES[1]

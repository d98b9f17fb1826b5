"""The record codec: JSON with a content-type header, sniffing, clear errors.

Avro's side is in test_avro_codec.py; what both encodings share is here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import MigrationSpec, MigrationStarted, StartMigration
from schemas import (
    RecordError,
    decode_command,
    decode_event,
    decode_input,
    decode_result,
    decode_task,
    encode,
)
from schemas.records import CLASSES, NESTED_TYPES, spec_from_plain, to_plain, to_plain_spec
from tests.fixtures.samples import SAMPLES, SPEC, decoder_for
from tests.fixtures.strategies import records

SMALL_SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
    mapping={"a": "b"},
    rules=({"x": 1},),
)


def spec_plain(**changes: Any) -> dict[str, Any]:
    plain = {
        "source_connection": "legacy",
        "source_table": "t",
        "source_key": "id",
        "target_connection": "warehouse",
        "target_table": "t",
    }
    return {**plain, **changes}


def start(**changes: Any) -> bytes:
    line = {"type": "StartMigration", "command_id": "c-1", "migration_id": "m-1"}
    line["spec"] = spec_plain()  # type: ignore[assignment]
    return json.dumps({**line, **changes}).encode()


# --- JSON round trips -------------------------------------------------------------


def test_a_command_round_trips_with_its_content_type() -> None:
    command = StartMigration(command_id="c-1", migration_id="m-1", spec=SMALL_SPEC)

    value, headers = encode(command, "json")

    assert headers == [("content-type", b"application/json"), ("record-type", b"StartMigration")]
    assert decode_command(value, headers) == command


def test_an_event_round_trips() -> None:
    event = MigrationStarted(
        event_id="m-1:1",
        migration_id="m-1",
        sequence=1,
        occurred_at="2026-01-01T00:00:00+00:00",
        causation_id="c-1",
        spec=SMALL_SPEC,
    )

    assert decode_event(*encode(event, "json")) == event


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_record_type_round_trips_as_json(name: str) -> None:
    record = SAMPLES[name]

    value, headers = encode(record, "json")

    assert value.startswith(b"{")
    assert decoder_for(name)(value, headers) == record
    assert decoder_for(name)(value, None) == record  # sniffed


@pytest.mark.parametrize("name", sorted(set(CLASSES) - set(NESTED_TYPES)))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_valid_record_round_trips_as_json(name: str, data: st.DataObject) -> None:
    record = data.draw(records(name))

    assert decoder_for(name)(*encode(record, "json")) == record


def test_the_json_form_is_the_plain_form_type_first() -> None:
    record = SAMPLES["StartMigration"]

    value, _ = encode(record, "json")

    assert value.startswith(b'{"type":"StartMigration","command_id":"c-1",')
    assert json.loads(value) == to_plain(record)
    assert to_plain(record)["spec"] == to_plain_spec(SPEC)
    assert to_plain_spec(SPEC)["rules"] == [dict(rule) for rule in SPEC.rules]
    assert spec_from_plain(to_plain_spec(SPEC)) == SPEC


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_a_specs_options_travel_as_given_even_a_value_decide_refuses(
    fmt: Literal["avro", "json"],
) -> None:
    for on_existing, mode in [("append", "copy-only"), ("overwrite", "fast")]:
        spec = replace(SMALL_SPEC, on_existing=on_existing, mode=mode)
        command = StartMigration(command_id="c", migration_id="m", spec=spec)

        assert decode_command(*encode(command, fmt)) == command


def test_a_json_spec_without_options_takes_their_defaults() -> None:
    without, given = (
        decode_command(start()),
        decode_command(start(spec=spec_plain(mode="copy-only"))),
    )

    assert isinstance(without, StartMigration) and isinstance(given, StartMigration)
    assert (without.spec.on_existing, without.spec.mode) == ("upsert", "full")
    assert (given.spec.on_existing, given.spec.mode) == ("upsert", "copy-only")


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_the_mapping_keeps_its_column_order(fmt: str) -> None:
    spec = MigrationSpec(
        source_connection="a",
        source_table="t",
        source_key="id",
        target_connection="b",
        target_table="t",
        mapping={"z": 1, "a": 2, "m": {"y": 1, "b": 2}},
    )

    decoded = decode_command(
        *encode(StartMigration(command_id="c", migration_id="m", spec=spec), fmt)
    )  # type: ignore[arg-type]

    assert isinstance(decoded, StartMigration)
    assert list(decoded.spec.mapping) == ["z", "a", "m"]
    assert list(decoded.spec.mapping["m"]) == ["y", "b"]


def test_a_record_json_cannot_hold_is_not_encoded() -> None:
    spec = MigrationSpec(
        source_connection="a",
        source_table="t",
        source_key="id",
        target_connection="b",
        target_table="t",
        mapping={"when": object()},
    )

    with pytest.raises(RecordError, match="StartMigration: cannot encode as JSON"):
        encode(StartMigration(command_id="c", migration_id="m", spec=spec), "json")
    with pytest.raises(RecordError, match="StartMigration: cannot encode as Avro"):
        encode(StartMigration(command_id="c", migration_id="m", spec=spec))


def test_an_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown record format 'xml'"):
        encode(SAMPLES["RetryMigration"], "xml")  # type: ignore[arg-type]


# --- sniffing and content types --------------------------------------------------


def test_a_record_without_headers_is_sniffed_as_json() -> None:
    command = decode_command(start(), None)

    assert isinstance(command, StartMigration)
    assert command.migration_id == "m-1"
    assert command.spec.batch_size == 1000


def test_leading_whitespace_still_sniffs_as_json() -> None:
    assert decode_command(b"  \n" + start(), []).migration_id == "m-1"


def test_a_header_without_a_value_is_ignored_and_the_record_sniffed() -> None:
    assert decode_command(start(), [("content-type", None)]).migration_id == "m-1"


@pytest.mark.parametrize(
    "header",
    [
        ("content-type", b"application/json"),
        ("Content-Type", b"application/json"),
        ("content-type", b" Application/JSON; charset=utf-8 "),
    ],
)
def test_the_content_type_header_is_read_loosely(header: tuple[str, bytes]) -> None:
    assert decode_command(start(), [("other", b"x"), header]).migration_id == "m-1"


def test_an_unsupported_content_type_is_named() -> None:
    with pytest.raises(RecordError, match="unsupported content-type 'text/plain'"):
        decode_command(b"{}", [("content-type", b"text/plain")])


def test_the_header_wins_over_sniffing() -> None:
    avro, _ = encode(SAMPLES["StartMigration"])

    with pytest.raises(RecordError, match="malformed JSON"):
        decode_command(avro, [("content-type", b"application/json")])


# --- the kind of record a topic carries ------------------------------------------


@pytest.mark.parametrize("fmt", ["avro", "json"])
@pytest.mark.parametrize(
    ("decoder", "name", "message"),
    [
        (decode_command, "MigrationStarted", "MigrationStarted is an event, not a command"),
        (decode_command, "PhaseProgressed", "PhaseProgressed is a phase result, not a command"),
        (decode_result, "StartMigration", "StartMigration is a command, not a phase result"),
        (decode_event, "RunPhase", "RunPhase is a phase task, not an event"),
        (decode_task, "PhaseSucceeded", "PhaseSucceeded is a phase result, not a phase task"),
        (decode_input, "MigrationPaused", "is an event, not a command or phase result"),
    ],
)
def test_a_record_of_another_kind_is_rejected(
    decoder: Any, name: str, message: str, fmt: str
) -> None:
    with pytest.raises(RecordError, match=message):
        decoder(*encode(SAMPLES[name], fmt))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["StartMigration", "CancelMigration", "PhaseErrored"])
def test_the_input_topic_takes_commands_and_results(name: str) -> None:
    for fmt in ("avro", "json"):
        assert decode_input(*encode(SAMPLES[name], fmt)) == SAMPLES[name]


# --- errors ----------------------------------------------------------------------


def escaped(message: str) -> str:
    return message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty record"),
        (None, "empty record"),
        (b"not json", "neither JSON"),
        (b"\xc3", "neither JSON"),
        (b"{bad", "malformed JSON"),
        (b'{"a": "\xff"}', "malformed JSON"),
        (b'["a"]', "neither JSON"),
        (b'{"type": "Nope"}', "unknown command type 'Nope'"),
        (b'{"type": 3}', "unknown command type 3"),
        (b'{"command_id": "c"}', "command: missing field type"),
        (b'{"type": "MigrationSpec"}', "unknown command type 'MigrationSpec'"),
        (b'{"type": "StartMigration", "command_id": "c"}', "missing field(s) migration_id, spec"),
        (
            b'{"type": "StartMigration", "command_id": "c", "migration_id": "m", "spec": {},'
            b' "extra": 1}',
            "unknown field(s) extra",
        ),
        (
            b'{"type": "StartMigration", "command_id": 7, "migration_id": "m", "spec": {'
            b'"source_connection": "a", "source_table": "t", "source_key": "id",'
            b' "target_connection": "b", "target_table": "t"}}',
            "command_id must be a string",
        ),
    ],
)
def test_bad_records_raise_a_record_error_that_says_why(value: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=escaped(message)):
        decode_command(value, None)


def test_a_json_array_with_a_json_header_is_not_a_record() -> None:
    with pytest.raises(RecordError, match="command must be a JSON object"):
        decode_command(b'["a"]', [("content-type", b"application/json")])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"command_id": None}, "StartMigration: field command_id must be a string"),
        ({"command_id": ["c"]}, "StartMigration: field command_id must be a string"),
        ({"spec": "legacy"}, "StartMigration: field spec must be a JSON object"),
        ({"spec": {}}, "StartMigration.spec: missing field(s) source_connection, source_table"),
        ({"spec": spec_plain(dsn="postgres://")}, "StartMigration.spec: unknown field(s) dsn"),
        ({"spec": spec_plain(batch_size="10")}, "spec: field batch_size must be an integer"),
        ({"spec": spec_plain(batch_size=10.0)}, "spec: field batch_size must be an integer"),
        ({"spec": spec_plain(batch_size=True)}, "spec: field batch_size must be an integer"),
        ({"spec": spec_plain(batch_size=2**63)}, "spec: field batch_size must be an integer"),
        ({"spec": spec_plain(batch_size=None)}, "spec: field batch_size must be an integer"),
        ({"spec": spec_plain(min_score="1")}, "spec: field min_score must be a number"),
        ({"spec": spec_plain(min_score=False)}, "spec: field min_score must be a number"),
        ({"spec": spec_plain(mapping=[1])}, "spec: field mapping must be a JSON object"),
        ({"spec": spec_plain(rules={})}, "spec: field rules must be an array of JSON objects"),
        ({"spec": spec_plain(rules=[1])}, "spec: field rules must be an array of JSON objects"),
        ({"spec": spec_plain(type="MigrationSpec")}, "spec: unknown field(s) type"),
        ({"spec": spec_plain(on_existing=None)}, "spec: field on_existing must be a string"),
        ({"spec": spec_plain(mode=["full"])}, "spec: field mode must be a string"),
    ],
)
def test_json_fields_are_checked_as_strictly_as_avro(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=escaped(message)):
        decode_command(start(**changes))


@pytest.mark.parametrize(
    ("decoder", "line", "message"),
    [
        (
            decode_result,
            {"type": "PhaseProgressed", "result_id": "r", "migration_id": "m", "phase": "copy",
             "run": 1, "rows_done": 1, "rows_total": 2, "checkpoint": 5},
            "PhaseProgressed: field checkpoint must be a string or null",
        ),
        (
            decode_result,
            {"type": "PhaseSucceeded", "result_id": "r", "migration_id": "m", "phase": "copy",
             "run": 1, "rows_done": 1, "score": "high"},
            "PhaseSucceeded: field score must be a number or null",
        ),
    ],
)  # fmt: skip
def test_optional_and_other_fields_are_checked_too(
    decoder: Any, line: dict[str, Any], message: str
) -> None:
    with pytest.raises(RecordError, match=escaped(message)):
        decoder(json.dumps(line).encode())


def test_an_integer_is_a_valid_double_and_null_a_valid_optional() -> None:
    line = json.loads(start(spec=spec_plain(min_score=1)))

    command = decode_command(json.dumps(line).encode())
    result = decode_result(
        b'{"type": "PhaseSucceeded", "result_id": "r", "migration_id": "m", "phase": "copy",'
        b' "run": 1, "rows_done": 1, "score": null}'
    )

    assert isinstance(command, StartMigration)
    assert command.spec.min_score == 1.0
    assert isinstance(command.spec.min_score, float)
    assert result.score is None  # type: ignore[union-attr]


def test_a_bad_spec_in_a_state_snapshot_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="spec must be a JSON object"):
        spec_from_plain(["legacy"])
    with pytest.raises(RecordError, match=escaped("spec: missing field(s) target_table")):
        spec_from_plain({k: v for k, v in spec_plain().items() if k != "target_table"})

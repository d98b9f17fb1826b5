"""The record codec: JSON with a content-type header, sniffing, clear errors."""

from __future__ import annotations

import json

import pytest

from schemas import RecordError, decode_command, decode_event, encode
from streams.domain import MigrationSpec, MigrationStarted, StartMigration

SPEC = MigrationSpec("legacy", "customers", "id", "warehouse", "customers", {"a": "b"}, ({"x": 1},))


def test_a_command_round_trips_with_its_content_type() -> None:
    command = StartMigration("c-1", "m-1", SPEC)

    value, headers = encode(command)

    assert headers == [("content-type", b"application/json")]
    assert decode_command(value, headers) == command


def test_an_event_round_trips() -> None:
    event = MigrationStarted("m-1:1", "m-1", 1, "2026-01-01T00:00:00+00:00", "c-1", SPEC)

    assert decode_event(*encode(event)) == event


def test_a_record_without_headers_is_sniffed_as_json() -> None:
    line = {
        "type": "StartMigration",
        "command_id": "c-1",
        "migration_id": "m-1",
        "spec": {
            "source_connection": "legacy",
            "source_table": "t",
            "source_key": "id",
            "target_connection": "warehouse",
            "target_table": "t",
        },
    }

    command = decode_command(json.dumps(line).encode(), None)

    assert command.migration_id == "m-1"
    assert command.spec.batch_size == 1000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty record"),
        (b"not json", "neither JSON"),
        (b"{bad", "malformed JSON"),
        (b'["a"]', "neither JSON"),
        (b'{"type": "Nope"}', "unknown command type 'Nope'"),
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
    with pytest.raises(RecordError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_command(value, None)


def test_an_unsupported_content_type_is_named() -> None:
    with pytest.raises(RecordError, match="unsupported content-type 'text/plain'"):
        decode_command(b"{}", [("content-type", b"text/plain")])

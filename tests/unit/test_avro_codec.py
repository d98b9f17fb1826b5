"""The Avro side of the codec: single-object encoding, fingerprints, errors.

Also pins that every schema matches its dataclass, field by field.
"""

from __future__ import annotations

import dataclasses
import json
from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import PhaseProgressRecorded
from schemas import (
    AVRO_CONTENT_TYPE,
    RecordError,
    decode_command,
    decode_event,
    encode,
)
from schemas.records import CLASSES, NESTED_TYPES, json_text
from schemas.registry import REGISTRY, fingerprint
from schemas.shapes import Field
from tests.fixtures.samples import SAMPLES, decoder_for
from tests.fixtures.strategies import records

RECORD_TYPES = sorted(set(CLASSES) - set(NESTED_TYPES))


def rabin(data: bytes) -> int:
    """CRC-64-AVRO as the Avro spec defines it, written out independently of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def with_spec_datum(**changes: Any) -> bytes:
    """A StartMigration written by hand, to put bad JSON text where Avro cannot see it."""
    schema = REGISTRY.current["StartMigration"]
    spec = {
        "source_connection": "a",
        "source_table": "t",
        "source_key": "id",
        "target_connection": "b",
        "target_table": "t",
        "mapping_json": "{}",
        "rules_json": "[]",
        "min_score": 1.0,
        "batch_size": 1,
        "parallelism": 1,
        **changes,
    }
    out = BytesIO(schema.header)
    out.seek(0, 2)
    schemaless_writer(out, schema.parsed, {"command_id": "c", "migration_id": "m", "spec": spec})
    return out.getvalue()


# --- the format ------------------------------------------------------------------


def test_the_fingerprint_is_crc_64_avro_as_the_spec_gives_it() -> None:
    assert fingerprint('"null"') == (7195948357588979594).to_bytes(8, "little")


@pytest.mark.parametrize("name", sorted(REGISTRY.current))
def test_a_record_is_marker_fingerprint_then_datum(name: str) -> None:
    schema = REGISTRY.current[name]

    assert schema.header[:2] == b"\xc3\x01"
    assert schema.header[2:] == rabin(schema.canonical.encode()).to_bytes(8, "little")


def test_the_canonical_form_inlines_the_spec_so_its_changes_change_the_fingerprint() -> None:
    canonical = json.loads(REGISTRY.current["StartMigration"].canonical)

    assert canonical["fields"][2]["type"]["name"] == "migration.v1.MigrationSpec"
    assert "doc" not in REGISTRY.current["StartMigration"].canonical


def test_avro_is_the_default_with_its_headers() -> None:
    value, headers = encode(SAMPLES["StartMigration"])

    assert headers == [
        ("content-type", AVRO_CONTENT_TYPE.encode()),
        ("record-type", b"StartMigration"),
    ]
    assert value[:10] == REGISTRY.current["StartMigration"].header
    assert AVRO_CONTENT_TYPE == "application/vnd.apache.avro+binary"


def test_json_text_fields_are_compact_json_in_their_own_order() -> None:
    mapping = Field("mapping", "mapping_json", "object", False, False)

    assert json_text(mapping, {"b": 1, "a": [None, 2.5]}) == '{"b":1,"a":[null,2.5]}'


# --- round trips -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_record_type_round_trips_as_avro(name: str) -> None:
    value, headers = encode(SAMPLES[name])

    assert decoder_for(name)(value, headers) == SAMPLES[name]
    assert decoder_for(name)(value, None) == SAMPLES[name]  # sniffed


@pytest.mark.parametrize("name", RECORD_TYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_valid_record_round_trips_as_avro(name: str, data: st.DataObject) -> None:
    record = data.draw(records(name))

    assert decoder_for(name)(*encode(record)) == record


def test_avro_is_smaller_than_json() -> None:
    for record in SAMPLES.values():
        assert len(encode(record)[0]) < len(encode(record, "json")[0])


# --- errors ----------------------------------------------------------------------


def test_an_unknown_fingerprint_is_named() -> None:
    value = b"\xc3\x01" + bytes.fromhex("0123456789abcdef") + b"\x02c"

    with pytest.raises(
        RecordError, match="unknown Avro writer schema fingerprint 0123456789abcdef"
    ):
        decode_command(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\xc3\x01\x00", "Avro record too short: 3 bytes"),
        (b"{}", "not Avro single-object encoding: starts with 7b 7d"),
    ],
)
def test_a_record_that_is_not_single_object_encoded_is_rejected(value: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        decode_command(value, [("content-type", AVRO_CONTENT_TYPE.encode())])


def test_a_truncated_datum_is_rejected() -> None:
    value, _ = encode(SAMPLES["StartMigration"])

    with pytest.raises(RecordError, match="StartMigration: corrupt Avro datum"):
        decode_command(value[:-3])


def test_bytes_after_the_datum_are_rejected() -> None:
    value, _ = encode(SAMPLES["ResumeMigration"])

    with pytest.raises(RecordError, match="ResumeMigration: 2 byte\\(s\\) after the datum"):
        decode_command(value + b"\x00\x00")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"mapping_json": "{bad"},
            "StartMigration.spec: field mapping_json must hold a JSON object",
        ),
        ({"mapping_json": "[1]"}, "field mapping_json must hold a JSON object"),
        ({"rules_json": "{}"}, "field rules_json must hold an array of JSON objects"),
        ({"rules_json": "[1]"}, "field rules_json must hold an array of JSON objects"),
    ],
)
def test_json_text_inside_avro_is_checked(changes: dict[str, str], message: str) -> None:
    with pytest.raises(RecordError, match=message.replace(".", r"\.")):
        decode_command(with_spec_datum(**changes))


def test_a_record_that_avro_cannot_hold_is_not_encoded() -> None:
    bad = PhaseProgressRecorded(
        event_id="e",
        migration_id="m",
        sequence=1,
        occurred_at="t",
        causation_id="c",
        phase="copy",
        rows_done="many",
        rows_total=10,
    )  # type: ignore[arg-type]

    with pytest.raises(RecordError, match="PhaseProgressRecorded: cannot encode as Avro"):
        encode(bad)


@settings(max_examples=300, deadline=None)
@given(tail=st.binary(max_size=80))
def test_corrupt_bytes_after_a_known_fingerprint_are_a_record_error_or_a_record(
    tail: bytes,
) -> None:
    value = REGISTRY.current["PhaseProgressRecorded"].header + tail

    try:
        event = decode_event(value)
    except RecordError:
        return
    assert isinstance(event, PhaseProgressRecorded)


# --- the schemas match the domain ------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_each_schema_matches_its_dataclass_field_by_field(name: str) -> None:
    shape = REGISTRY.shapes[name]
    fields = [f for f in dataclasses.fields(CLASSES[name]) if f.name != "type"]

    assert [f.name for f in shape.fields] == [f.name for f in fields]
    for field, attribute in zip(shape.fields, fields, strict=True):
        assert field.required == (attribute.default is attribute.default_factory)
        assert field.nullable == str(attribute.type).endswith("| None"), field.name


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_each_schema_default_is_its_dataclass_default(name: str) -> None:
    raw = {f["name"]: f for f in json.loads(schema_text(name))["fields"]}
    for attribute in dataclasses.fields(CLASSES[name]):
        if attribute.name == "type" or attribute.default is attribute.default_factory:
            continue
        field = next(f for f in REGISTRY.shapes[name].fields if f.name == attribute.name)
        default = _default(attribute)
        expected = json_text(field, default) if field.kind.startswith("object") else default
        assert raw[field.avro_name]["default"] == expected, field.name


def test_each_record_type_has_a_schema_and_its_type_field_names_it() -> None:
    assert set(REGISTRY.current) == set(CLASSES)
    for name, record in SAMPLES.items():
        assert record.type == name == type(record).__name__


def schema_text(name: str) -> str:
    from schemas.registry import SCHEMA_DIR

    return (SCHEMA_DIR / f"{name}.avsc").read_text()


def _default(attribute: dataclasses.Field[Any]) -> Any:
    if attribute.default_factory is not dataclasses.MISSING:
        return attribute.default_factory()
    return attribute.default

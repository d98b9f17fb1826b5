"""Records as Avro single-object encoded bytes.

The Avro spec's single-object encoding: the marker C3 01, the writer schema's
8-byte fingerprint (see schemas.registry), then the binary datum. A record's
type is its schema's name; a datum written with another version of the schema
is resolved into the current one (a field the reader lacks is skipped, a
field the writer lacked takes its default).
"""

from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from schemas.exceptions import RecordError
from schemas.records import CLASSES, Record, from_json_text, json_text
from schemas.registry import MARKER, Registry, Schema
from schemas.shapes import JSON_KINDS, Field, Shape

HEADER_SIZE = len(MARKER) + 8
NESTED_KEPT = 1024  # nested records whose datum is kept, by identity

Shapes = Mapping[str, Shape]


def encode(record: Record, registry: Registry) -> bytes:
    name = type(record).__name__
    out = BytesIO()
    out.write(registry.current[name].header)
    try:
        schemaless_writer(out, registry.current[name].parsed, to_datum(record, registry.shapes))
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise RecordError(f"{name}: cannot encode as Avro: {exc}") from exc
    return out.getvalue()


def writer_of(value: bytes, registry: Registry) -> Schema:
    """The schema a single-object encoded record was written with."""
    if value[:2] != MARKER:
        raise RecordError(f"not Avro single-object encoding: starts with {value[:2].hex(' ')}")
    if len(value) < HEADER_SIZE:
        raise RecordError(f"Avro record too short: {len(value)} bytes")
    fingerprint = value[2:HEADER_SIZE]
    writer = registry.writers.get(fingerprint)
    if writer is None:
        raise RecordError(
            f"unknown Avro writer schema fingerprint {fingerprint.hex()}: not among the "
            f"{len(registry.writers)} known (current and schemas/history/)"
        )
    return writer


def decode(value: bytes, writer: Schema, registry: Registry) -> Any:
    """The record in `value`, written with `writer`, read into the current schema."""
    reader = registry.current.get(writer.name)
    if reader is None:
        raise RecordError(f"{writer.name}: no current schema for this record type")
    datum = _read(value, writer, reader)
    return from_datum(datum, writer.name, registry.shapes)


def to_datum(record: Any, shapes: Shapes) -> Mapping[str, Any]:
    shape = shapes[type(record).__name__]
    attributes: dict[str, Any] | None = getattr(record, "__dict__", None)
    if shape.flat:
        # As it is: fastavro skips the attributes the schema lacks (`type`).
        return attributes or {f.name: getattr(record, f.name) for f in shape.fields}
    if attributes is None:
        return {f.avro_name: _to_avro(f, getattr(record, f.name), shapes) for f in shape.fields}
    # The attributes, with the fields that convert converted (under their
    # Avro names; fastavro skips the rest, as above).
    datum = dict(attributes)
    for f in shape.converted:
        datum[f.avro_name] = _to_avro(f, attributes[f.name], shapes)
    return datum


def from_datum(datum: dict[str, Any], name: str, shapes: Shapes, where: str = "") -> Any:
    shape = shapes[name]
    if shape.flat:
        return CLASSES[name](**datum)
    where = where or name
    args = {f.name: _from_avro(f, datum[f.avro_name], shapes, where) for f in shape.fields}
    return CLASSES[name](**args)


def _read(value: bytes, writer: Schema, reader: Schema) -> dict[str, Any]:
    body = BytesIO(value)
    body.seek(HEADER_SIZE)
    try:
        datum = schemaless_reader(body, writer.parsed, None if reader is writer else reader.parsed)
    except SchemaResolutionError as exc:
        raise RecordError(f"{writer.name}: cannot resolve writer schema: {exc}") from exc
    except Exception as exc:  # whatever corrupt bytes make the reader raise
        raise RecordError(f"{writer.name}: corrupt Avro datum: {exc!r}") from exc
    if body.tell() != len(value):
        raise RecordError(f"{writer.name}: {len(value) - body.tell()} byte(s) after the datum")
    if not isinstance(datum, dict):
        raise RecordError(f"{writer.name}: not a record")
    return datum


# A nested record's datum, by the record's identity: one spec travels in a
# migration's MigrationStarted and in each of its RunPhase tasks, and its JSON
# texts cost more than the rest of the record. The record itself is held, so
# its id is not reused while it is here; records are frozen, and a datum is
# only read (by fastavro).
_nested: dict[int, tuple[Any, Mapping[str, Any], Shapes]] = {}


def _nested_datum(value: Any, shapes: Shapes) -> Mapping[str, Any]:
    kept = _nested.get(id(value))
    if kept is not None and kept[0] is value and kept[2] is shapes:
        return kept[1]
    datum = to_datum(value, shapes)
    if len(_nested) >= NESTED_KEPT:
        _nested.clear()
    _nested[id(value)] = (value, datum, shapes)
    return datum


def _to_avro(field: Field, value: Any, shapes: Shapes) -> Any:
    if value is None:
        return None
    if field.kind == "record":
        return _nested_datum(value, shapes)
    if field.kind in JSON_KINDS:
        return json_text(field, value)
    return value


def _from_avro(field: Field, value: Any, shapes: Shapes, where: str) -> Any:
    if value is None:
        return None
    if field.kind == "record":
        return from_datum(value, field.record, shapes, f"{where}.{field.name}")
    if field.kind in JSON_KINDS:
        return from_json_text(field, value, where)
    return value

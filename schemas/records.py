"""Records in their plain form (JSON-shaped dicts), checked against their schema.

The plain form is the JSON encoding: `type` naming the record, then every
field by name in schema order; `spec.mapping` and `spec.rules` as JSON values
(keys keep their order), bytes as base64 text. It is checked as strictly as
Avro checks binary: an unknown or missing field, or a value of the wrong type,
is a RecordError that names the field. An integer is accepted where a double
is expected, never the reverse.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from domain import (
    AbortCutover,
    CancelMigration,
    CancelPhase,
    CommandRejected,
    CutoverAborted,
    CutoverCompleted,
    CutoverMigration,
    CutoverOptions,
    CutoverRequested,
    CutoverResult,
    DiffMigration,
    DiffRecorded,
    DiffTaken,
    MigrationCancelled,
    MigrationCompleted,
    MigrationFailed,
    MigrationPaused,
    MigrationPausing,
    MigrationResumed,
    MigrationRetried,
    MigrationSpec,
    MigrationStarted,
    PauseMigration,
    PausePhase,
    PhaseCompleted,
    PhaseErrored,
    PhaseFailed,
    PhaseHalted,
    PhaseProgressed,
    PhaseProgressRecorded,
    PhaseRequested,
    PhaseSucceeded,
    PhaseTask,
    RepairMigration,
    ResumeMigration,
    RetryMigration,
    RunPhase,
    SchemaDrifted,
    SnapshotRef,
    StartMigration,
)
from domain.commands import Command, PhaseResult
from domain.events import Event
from schemas.exceptions import RecordError
from schemas.registry import REGISTRY
from schemas.shapes import Field, Shape

Record = Command | PhaseResult | Event | PhaseTask
Shapes = Mapping[str, Shape]


def _by_name(*classes: type[Any]) -> dict[str, type[Any]]:
    return {cls.__name__: cls for cls in classes}


COMMAND_TYPES = _by_name(
    StartMigration,
    PauseMigration,
    ResumeMigration,
    CancelMigration,
    RetryMigration,
    DiffMigration,
    RepairMigration,
) | _by_name(CutoverMigration, AbortCutover)
RESULT_TYPES = _by_name(PhaseProgressed, PhaseSucceeded, PhaseHalted, PhaseErrored, DiffTaken)
EVENT_TYPES = _by_name(
    MigrationStarted,
    PhaseRequested,
    PhaseProgressRecorded,
    PhaseCompleted,
    PhaseFailed,
    MigrationPausing,
    MigrationPaused,
    MigrationResumed,
    MigrationRetried,
    MigrationCompleted,
    MigrationFailed,
    MigrationCancelled,
    CommandRejected,
    DiffRecorded,
) | _by_name(CutoverRequested, CutoverAborted, CutoverCompleted, SchemaDrifted)
TASK_TYPES = _by_name(RunPhase, PausePhase, CancelPhase)
# Records that travel only inside others (a field's type), never on their own.
NESTED_TYPES = _by_name(MigrationSpec, SnapshotRef) | _by_name(CutoverOptions, CutoverResult)
CLASSES: dict[str, type[Any]] = {
    **COMMAND_TYPES,
    **RESULT_TYPES,
    **EVENT_TYPES,
    **TASK_TYPES,
    **NESTED_TYPES,
}


def to_plain(record: Record, shapes: Shapes = REGISTRY.shapes) -> dict[str, Any]:
    name = type(record).__name__
    return {"type": name, **_plain(record, shapes[name], shapes)}


def to_plain_spec(spec: MigrationSpec) -> dict[str, Any]:
    return _plain(spec, REGISTRY.shapes["MigrationSpec"], REGISTRY.shapes)


def spec_from_plain(plain: object) -> MigrationSpec:
    if not isinstance(plain, Mapping):
        raise RecordError("spec must be a JSON object")
    spec: MigrationSpec = from_plain(plain, "MigrationSpec", REGISTRY.shapes, "spec")
    return spec


def from_plain(body: Mapping[str, Any], name: str, shapes: Shapes, where: str) -> Any:
    """The record `name` built from its plain fields (without `type`), checked."""
    shape = shapes[name]
    unknown = body.keys() - shape.names
    if unknown:
        raise RecordError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    missing = [f.name for f in shape.fields if f.required and f.name not in body]
    if missing:
        raise RecordError(f"{where}: missing field(s) {', '.join(missing)}")
    args = {
        f.name: _checked(f, body[f.name], shapes, where) for f in shape.fields if f.name in body
    }
    return CLASSES[name](**args)


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # what json.dumps would build per call


def json_text(field: Field, value: Any) -> str:
    """A JSON-text field's value as the text Avro carries (keys keep their order)."""
    return _COMPACT.encode(_plain_value(field, value, {}))


def from_json_text(field: Field, text: str, where: str) -> Any:
    try:
        value = _CHECKS[field.kind](json.loads(text))
    except (ValueError, RecursionError):
        value = _WRONG
    if value is _WRONG:
        raise RecordError(f"{where}: field {field.avro_name} must hold {_EXPECTED[field.kind]}")
    return value


def _plain(record: Any, shape: Shape, shapes: Shapes) -> dict[str, Any]:
    if shape.flat:
        return {f.name: getattr(record, f.name) for f in shape.fields}
    return {f.name: _plain_value(f, getattr(record, f.name), shapes) for f in shape.fields}


def _plain_value(field: Field, value: Any, shapes: Shapes) -> Any:
    if value is None:
        return None
    if field.kind == "record":
        return _plain(value, shapes[field.record], shapes)
    if field.kind == "object":
        return dict(value)
    if field.kind == "object[]":
        return [dict(item) for item in value]
    if field.kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    return value


def _checked(field: Field, value: Any, shapes: Shapes, where: str) -> Any:
    if value is None and field.nullable:
        return None
    if field.kind == "record" and isinstance(value, Mapping):
        return from_plain(value, field.record, shapes, f"{where}.{field.name}")
    checked = _CHECKS[field.kind](value)
    if checked is _WRONG:
        expected = _EXPECTED[field.kind] + (" or null" if field.nullable else "")
        raise RecordError(f"{where}: field {field.name} must be {expected}")
    return checked


_WRONG: Any = object()


def _integer(bits: int) -> Callable[[Any], Any]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1)
    return lambda v: v if type(v) is int and low <= v < high else _WRONG


def _double(value: Any) -> Any:
    if type(value) is float or (type(value) is int and abs(value) < 2**1023):
        return float(value)
    return _WRONG


def _base64(value: Any) -> Any:
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else _WRONG
    except binascii.Error:
        return _WRONG


def _objects(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return tuple(value)
    return _WRONG


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "string": lambda v: v if isinstance(v, str) else _WRONG,
    "int": _integer(32),
    "long": _integer(64),
    "double": _double,
    "boolean": lambda v: v if type(v) is bool else _WRONG,
    "bytes": _base64,
    "object": lambda v: v if isinstance(v, dict) else _WRONG,
    "object[]": _objects,
    "record": lambda v: _WRONG,  # a mapping is handled before
}
_EXPECTED = {
    "string": "a string",
    "int": "a 32-bit integer",
    "long": "an integer",
    "double": "a number",
    "boolean": "true or false",
    "bytes": "base64 text",
    "object": "a JSON object",
    "object[]": "an array of JSON objects",
    "record": "a JSON object",
}

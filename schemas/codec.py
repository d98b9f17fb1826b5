"""Encode and decode records: Avro single-object encoding (the default) or JSON.

Every record gets two headers: `content-type` (AVRO_CONTENT_TYPE or
JSON_CONTENT_TYPE) and `record-type` (its type name, for people and tools;
decoding never relies on it). A record without a content-type header is
sniffed: a body starting with `{` is JSON, one starting with C3 01 (the
single-object marker) is Avro, anything else is a RecordError.

Each decode function accepts one kind of record, the kind its topic carries;
any other record is a RecordError, and so is every record that fails its
schema: the caller dead-letters it. A command, phase result or phase task
holding text or a number no store can hold (domain.text: a NUL, a lone
surrogate, NaN) is a RecordError too, naming the field: it would become an
event the read model refuses. Events are decoded as they are (the log is kept
as written; the projector quarantines what it cannot store).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from domain import PhaseTask
from domain.commands import Command, Input, PhaseResult
from domain.events import Event
from domain.text import unstorable
from schemas import avro
from schemas.exceptions import RecordError
from schemas.records import (
    COMMAND_TYPES,
    EVENT_TYPES,
    RESULT_TYPES,
    TASK_TYPES,
    Record,
    from_plain,
    to_plain,
)
from schemas.registry import MARKER, REGISTRY, Registry

CONTENT_TYPE_HEADER = "content-type"
RECORD_TYPE_HEADER = "record-type"
JSON_CONTENT_TYPE = "application/json"
AVRO_CONTENT_TYPE = "application/vnd.apache.avro+binary"

Format = Literal["avro", "json"]
Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Kind:
    noun: str
    article: str
    types: Mapping[str, type[Any]]
    storable_only: bool = True  # refuse what no store can hold


COMMANDS = Kind("command", "a command", COMMAND_TYPES)
RESULTS = Kind("phase result", "a phase result", RESULT_TYPES)
INPUTS = Kind(
    "command or phase result", "a command or phase result", {**COMMAND_TYPES, **RESULT_TYPES}
)
EVENTS = Kind("event", "an event", EVENT_TYPES, storable_only=False)
TASKS = Kind("phase task", "a phase task", TASK_TYPES)
_KIND_OF = {name: kind for kind in (COMMANDS, RESULTS, EVENTS, TASKS) for name in kind.types}
_CONTENT_TYPES = {"avro": AVRO_CONTENT_TYPE.encode(), "json": JSON_CONTENT_TYPE.encode()}


def encode(
    record: Record, fmt: Format = "avro", *, registry: Registry = REGISTRY
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record's bytes and the headers that describe them."""
    if fmt == "avro":
        value = avro.encode(record, registry)
    elif fmt == "json":
        value = _json(record, registry)
    else:
        raise ValueError(f"unknown record format {fmt!r}; expected 'avro' or 'json'")
    name = type(record).__name__.encode()
    return value, [(CONTENT_TYPE_HEADER, _CONTENT_TYPES[fmt]), (RECORD_TYPE_HEADER, name)]


def decode_command(
    value: bytes | None, headers: Headers | None = None, *, registry: Registry = REGISTRY
) -> Command:
    return cast(Command, _decode(value, headers, COMMANDS, registry))


def decode_result(
    value: bytes | None, headers: Headers | None = None, *, registry: Registry = REGISTRY
) -> PhaseResult:
    return cast(PhaseResult, _decode(value, headers, RESULTS, registry))


def decode_input(
    value: bytes | None, headers: Headers | None = None, *, registry: Registry = REGISTRY
) -> Input:
    """A command or a phase result, for a topic that carries both."""
    return cast(Input, _decode(value, headers, INPUTS, registry))


def decode_event(
    value: bytes | None, headers: Headers | None = None, *, registry: Registry = REGISTRY
) -> Event:
    return cast(Event, _decode(value, headers, EVENTS, registry))


def decode_task(
    value: bytes | None, headers: Headers | None = None, *, registry: Registry = REGISTRY
) -> PhaseTask:
    return cast(PhaseTask, _decode(value, headers, TASKS, registry))


def content_type(value: bytes, headers: Headers | None) -> str:
    """The header's content type (without parameters), else the sniffed one, else "unknown"."""
    for key, raw in headers or ():
        if key.lower() == CONTENT_TYPE_HEADER and raw is not None:
            return raw.decode("latin-1").split(";", 1)[0].strip().lower()
    if value[:2] == MARKER:
        return AVRO_CONTENT_TYPE
    return JSON_CONTENT_TYPE if value.lstrip()[:1] == b"{" else "unknown"


def _decode(value: bytes | None, headers: Headers | None, kind: Kind, registry: Registry) -> Any:
    record = _decoded(value, headers, kind, registry)
    if kind.storable_only:
        found = unstorable(record)
        if found is not None:
            raise RecordError(f"{type(record).__name__}: {found}")
    return record


def _decoded(value: bytes | None, headers: Headers | None, kind: Kind, registry: Registry) -> Any:
    if not value:
        raise RecordError("empty record")
    encoding = content_type(value, headers)
    if encoding == AVRO_CONTENT_TYPE:
        writer = avro.writer_of(value, registry)
        _accept(writer.name, kind)
        return avro.decode(value, writer, registry)
    if encoding == JSON_CONTENT_TYPE:
        body = _json_object(value, kind)
        name = _accept(body.pop("type", None), kind)
        return from_plain(body, name, registry.shapes, name)
    if encoding == "unknown":
        raise RecordError(
            "record is neither JSON nor Avro: no content-type header, and it starts with"
            " neither '{' nor the Avro single-object marker C3 01"
        )
    raise RecordError(f"unsupported content-type {encoding!r}")


def _json(record: Record, registry: Registry) -> bytes:
    try:
        return json.dumps(to_plain(record, registry.shapes), separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{type(record).__name__}: cannot encode as JSON: {exc}") from exc


def _accept(name: object, kind: Kind) -> str:
    if isinstance(name, str) and name in kind.types:
        return name
    if isinstance(name, str) and name in _KIND_OF:
        raise RecordError(f"{name} is {_KIND_OF[name].article}, not {kind.article}")
    if name is None:
        raise RecordError(f"{kind.noun}: missing field type")
    raise RecordError(f"unknown {kind.noun} type {name!r}; expected one of {sorted(kind.types)}")


def _json_object(value: bytes, kind: Kind) -> dict[str, Any]:
    try:
        body = json.loads(value)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RecordError(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RecordError(f"{kind.noun} must be a JSON object")
    return body

"""Encode and decode records; a `content-type` header says which encoding.

Records without the header are sniffed: a body starting with `{` is JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from schemas.exceptions import RecordError
from schemas.records import command_from_plain, event_from_plain, to_plain
from streams.domain.commands import Command
from streams.domain.events import Event

CONTENT_TYPE_HEADER = "content-type"
JSON_CONTENT_TYPE = "application/json"

Headers = Sequence[tuple[str, bytes | None]]


def encode(record: Command | Event) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record's bytes and the headers that describe them."""
    body = json.dumps(to_plain(record), separators=(",", ":"), sort_keys=True)
    return body.encode(), [(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE.encode())]


def decode_command(value: bytes | None, headers: Headers | None = None) -> Command:
    return command_from_plain(_plain(value, headers))


def decode_event(value: bytes | None, headers: Headers | None = None) -> Event:
    return event_from_plain(_plain(value, headers))


def content_type(value: bytes, headers: Headers | None) -> str:
    for key, raw in headers or ():
        if key.lower() == CONTENT_TYPE_HEADER and raw is not None:
            return raw.decode("latin-1").strip().lower()
    return JSON_CONTENT_TYPE if value.lstrip()[:1] == b"{" else "unknown"


def _plain(value: bytes | None, headers: Headers | None) -> Any:
    if not value:
        raise RecordError("empty record")
    kind = content_type(value, headers)
    if kind == "unknown":
        raise RecordError(
            "record is neither JSON nor Avro: no content-type header and it does not start with '{'"
        )
    if kind != JSON_CONTENT_TYPE:
        raise RecordError(f"unsupported content-type {kind!r}")
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"malformed JSON: {exc}") from exc

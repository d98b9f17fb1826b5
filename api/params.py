"""Query parameters, checked: a bad one is a 400 that names it (in the JSON
body; a value is echoed only as its repr, so no control character travels)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import TypeGuard

from multidict import MultiMapping

from api.bodies import loads
from api.errors import BadRequest
from domain import Status
from domain.text import unstorable

MAX_WAIT_SECONDS = 60.0
WAIT_SECONDS = 10.0
POLL_SECONDS = 25.0
MAX_VERSION = 2**62


def bad(message: str) -> BadRequest:
    return BadRequest(message)


def integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer in [{low}, {high}]") from None
    if not low <= value <= high:
        raise bad(f"{name} must be an integer in [{low}, {high}]")
    return value


def since_version(query: MultiMapping[str]) -> int | None:
    if "since_version" not in query:
        return None
    return integer(query, "since_version", 0, 0, MAX_VERSION)


def seconds(
    query: MultiMapping[str], name: str = "timeout", default: float = WAIT_SECONDS
) -> float:
    """Seconds within (0, MAX_WAIT_SECONDS]."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_WAIT_SECONDS:
        raise bad(f"{name} must be a number of seconds in (0, {MAX_WAIT_SECONDS:g}]")
    return value


def wait(query: MultiMapping[str]) -> bool:
    raw = query.get("wait", "false")
    if raw not in ("true", "false"):
        raise bad("wait must be true or false")
    return raw == "true"


def flag(query: MultiMapping[str], name: str) -> bool | None:
    """`?name=true|false`; None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise bad(f"{name} must be true or false")
    return raw == "true"


def statuses(query: MultiMapping[str]) -> list[str]:
    """`?status=RUNNING&status=PAUSED` or `?status=RUNNING,PAUSED`."""
    found = [s for raw in query.getall("status", []) for s in raw.split(",") if s]
    unknown = sorted(set(found) - {s.value for s in Status})
    if unknown:
        raise bad(f"status must be among {', '.join(Status)}; unknown: {unknown}")
    return sorted(set(found))


def encode_cursor(created_at: datetime, migration_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), migration_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor(query: MultiMapping[str]) -> tuple[str, str] | None:
    """The opaque cursor of a list page: the last row's (created_at, migration_id)."""
    raw = query.get("cursor")
    if raw is None:
        return None
    try:
        parts = loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), "cursor")
    except (BadRequest, binascii.Error, ValueError):
        parts = None
    if not _is_cursor(parts):
        raise bad("cursor is not one this API gave out")
    created, mid = parts
    return created, mid


def _is_cursor(parts: object) -> TypeGuard[list[str]]:
    """[created_at in ISO 8601, migration_id], both storable text."""
    if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts)):
        return False
    try:
        datetime.fromisoformat(parts[0])
    except ValueError:
        return False
    return unstorable(parts) is None

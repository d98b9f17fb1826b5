"""JSON answers: times in ISO 8601, problems in one shape."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(data: Any) -> str:
    return json.dumps(data, default=_default)


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


def problem(status: int, title: str, detail: object = None, **extra: object) -> web.Response:
    """`{"status", "title", "detail"?, ...}`: what is wrong, for people and programs."""
    body: dict[str, object] = {"status": status, "title": title}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return web.json_response(body, status=status, dumps=dumps)

"""JSON from clients (bodies and cursors), bounded before it is parsed.

The nesting depth is counted without recursion before the parser (which
recurses) sees the text; integer literals longer than MAX_DIGITS, NaN, the
infinities and numbers too large for a double are refused while parsing; then
every string and number must be one every store can hold (domain.text). Too
deep or malformed: 400; a value no store can hold: 422 naming its field.
"""

from __future__ import annotations

import json
import math
import re

from aiohttp import web

from api.errors import BadRequest, InvalidBody
from domain.text import unstorable

MAX_DEPTH = 32  # a spec nests 5 deep; far from the parser's recursion limit
MAX_DIGITS = 40  # an integer literal; Python's own limit is 4,300 digits
_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped)."""
    deepest = level = 0
    for token in _STRUCTURE.finditer(raw):
        mark = token.group()
        if mark in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        elif mark in (b"]", b"}"):
            level -= 1
    return deepest


def loads(raw: bytes | str, what: str = "JSON") -> object:
    """Parse bounded JSON; BadRequest when it is malformed or out of bounds."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if depth(data) > MAX_DEPTH:
        raise BadRequest(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(data, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed {what}: {exc}") from None


async def read_json(request: web.Request, empty: object = None) -> object:
    """The body as JSON; `empty` when there is none (None: a body is required).
    InvalidBody names each value no store can hold."""
    raw = await request.read()
    if not raw.strip() and empty is not None:
        return empty
    body = loads(raw)
    found = unstorable(body)
    if found is not None:
        raise InvalidBody([{"field": found.where or "(body)", "error": found.why}])
    return body


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BadRequest(f"an integer of more than {MAX_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"the number {text[:40]} is too large")
    return value


def _constant(text: str) -> float:
    raise BadRequest(f"{text} is not a JSON number")

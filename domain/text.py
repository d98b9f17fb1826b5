"""What every store can hold: the one rule on text and numbers (pure).

PostgreSQL refuses U+0000 in `text` and in `jsonb` (and `\\u0000` in JSON
text), and cannot encode a lone surrogate (U+D800..U+DFFF, what Python makes of
bytes that are not UTF-8) at all; `jsonb` takes no NaN or infinity. A command
holding any of them would become an event the read model cannot store, so
they are refused where text comes in: the API, the spec parser, the decoder of
commands and phase results.

`refusal(text)` says why one string cannot be stored (None: it can);
`storable(text)` is text of our own making (an error's message) with every
refused character replaced by U+FFFD, so a reason can always be recorded;
`unstorable(value)` finds the first refused string (key or value) or number
in a JSON-shaped value, a dataclass or a tuple, and names where it is.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping

__all__ = ["Unstorable", "refusal", "storable", "unstorable"]

_REFUSED = re.compile("[\x00\ud800-\udfff]")


@dataclasses.dataclass(frozen=True)
class Unstorable:
    """Where (`spec.mapping.email.default`, `reason`; "" for the value itself) and why."""

    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.where or 'value'}: {self.why}"


def refusal(text: str) -> str | None:
    """Why PostgreSQL cannot store `text` (None: it can)."""
    found = _REFUSED.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "holds a NUL character (U+0000), which cannot be stored"
    return f"holds U+{ord(found.group()):04X}, a lone surrogate: not UTF-8 text"


def storable(text: str) -> str:
    """`text` with each character no store can hold replaced by U+FFFD."""
    return _REFUSED.sub("\ufffd", text)


def unstorable(value: object, where: str = "") -> Unstorable | None:
    """The first part of `value` that cannot be stored, or None."""
    if _all_storable(value):  # the common case, without naming places
        return None
    for at, item in _parts(value, where):
        why = _why(item)
        if why is not None:
            return Unstorable(at, why)
    return None


def _all_storable(value: object) -> bool:
    """Whether every string and number in `value` can be stored: its texts
    are searched at once, joined, and its numbers checked as they come."""
    if type(value) is str:
        return _REFUSED.search(value) is None
    texts: list[str] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            texts.append(item)  # type: ignore[arg-type]
        elif kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                return False
        elif kind is int or kind is bool or item is None or kind is bytes:
            continue
        elif kind is dict:
            for key, child in item.items():  # type: ignore[attr-defined]
                stack.append(key)
                stack.append(child)
        elif kind is tuple or kind is list:
            stack.extend(item)  # type: ignore[arg-type]
        elif hasattr(kind, "__dataclass_fields__") and hasattr(item, "__dict__"):
            stack.extend(item.__dict__.values())  # a dataclass's __dict__ holds its fields
        elif isinstance(item, str):  # a str subclass (a StrEnum member)
            texts.append(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, Mapping):
            for key, child in item.items():
                stack.append(key)
                stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return _REFUSED.search("".join(texts)) is None


def _why(item: object) -> str | None:
    if isinstance(item, str):
        return refusal(item)
    if isinstance(item, float) and not math.isfinite(item):
        return f"is {item}: only finite numbers can be stored"
    return None


def _parts(value: object, where: str) -> Iterator[tuple[str, object]]:
    """Every string and number in `value`, with its place; an explicit stack,
    so a deep value cannot exhaust the interpreter's recursion limit."""
    stack: list[tuple[str, object]] = [(where, value)]
    while stack:
        at, item = stack.pop()
        yield at, item
        stack.extend(reversed(list(_children(at, item))))


def _children(at: str, item: object) -> Iterator[tuple[str, object]]:
    if isinstance(item, Mapping):
        for key, child in item.items():
            place = _join(at, str(key))
            yield place, key
            yield place, child
    elif isinstance(item, list | tuple):
        yield from ((f"{at}[{i}]", child) for i, child in enumerate(item))
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        for field in dataclasses.fields(item):
            yield _join(at, field.name), getattr(item, field.name)


def _join(at: str, name: str) -> str:
    shown = name if refusal(name) is None else repr(name)
    return f"{at}.{shown}" if at else shown

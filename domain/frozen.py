"""A frozen dataclass copied with some fields changed, fast.

`dataclasses.replace` calls `__init__` again, field by field, which costs
about ten times a copy of the instance's dict: the read model folds every
event through a few replaces, so that was much of its time. The copy is
taken as it is (no `__post_init__` runs), which suits the domain's states
and the read model's rows: plain values, none checked after construction.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def replace(obj: T, /, **changes: Any) -> T:
    """`obj` with `changes`; a name that is not a field of `obj` is a TypeError."""
    fields = obj.__dict__
    copy = object.__new__(type(obj))
    copy.__dict__.update(fields, **changes)
    if len(copy.__dict__) != len(fields):  # cheaper than comparing the names each time
        unknown = ", ".join(sorted(changes.keys() - fields.keys()))
        raise TypeError(f"{type(obj).__name__} has no field(s) {unknown}")
    return copy

"""The schema-drift guard: the captured table's columns as the copy saw
them (`Shape`), checked against every decoded change and, when capture has
caught up, against the source's catalog. Any difference (a column added,
dropped or retyped) raises SchemaDrifted naming it, before the change that
shows it is applied: the target never gets a row of another shape.

wal2json decodes each change with the table's definition at that point of
the WAL, so the first change after a DDL carries the new shape. An UPDATE
may leave out a column (unchanged and TOASTed, see changes.py): that is a
drop only for a column whose type is not stored out of line, or when the
catalog says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.dataplane.cdc.changes import INSERT, UPDATE, Change
from streams.dataplane.errors import SchemaDrifted


@dataclass(frozen=True)
class Shape:
    """A table's columns `(name, type)` in order (format_type's spelling),
    and those whose type may be stored out of line (TOAST)."""

    table: str
    columns: tuple[tuple[str, str], ...]
    toastable: frozenset[str] = frozenset()

    @property
    def types(self) -> dict[str, str]:
        return dict(self.columns)

    def as_json(self) -> dict[str, object]:
        return {"columns": [list(c) for c in self.columns], "toastable": sorted(self.toastable)}

    @classmethod
    def of(cls, table: str, found: dict[str, object]) -> Shape:
        columns = found["columns"]
        toastable = found.get("toastable") or []
        assert isinstance(columns, list) and isinstance(toastable, list)
        return cls(table, tuple((str(n), str(t)) for n, t in columns), frozenset(toastable))


def differences(expected: Shape, now: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """What changed from `expected` to the columns `now`: (column, in words)."""
    before, after = expected.types, dict(now)
    found = [(n, f"column {n} added ({t})") for n, t in now if n not in before]
    found += [(n, f"column {n} dropped") for n, _ in expected.columns if n not in after]
    found += [
        (n, f"column {n} retyped from {before[n]} to {t}")
        for n, t in now
        if n in before and _unquoted(before[n]) != _unquoted(t)
    ]
    return found


def _unquoted(type_name: str) -> str:
    """A type's name as wal2json prints it (`char` for format_type's `"char"`)."""
    return type_name.replace('"', "")


def check_change(expected: Shape, change: Change) -> None:
    """SchemaDrifted when `change` shows a shape other than `expected`."""
    if change.kind not in (INSERT, UPDATE):
        return
    seen = [(c.name, c.type) for c in change.columns]
    names = {n for n, _ in seen}
    unchanged = expected.toastable - names if change.kind == UPDATE else frozenset()
    found = [(n, d) for n, d in differences(expected, seen) if n in names or n not in unchanged]
    _raise(expected, found)


def check_catalog(expected: Shape, now: Sequence[tuple[str, str]]) -> None:
    """SchemaDrifted when the catalog's columns `now` differ from `expected`."""
    _raise(expected, differences(expected, now))


def _raise(expected: Shape, found: list[tuple[str, str]]) -> None:
    if found:
        raise SchemaDrifted(expected.table, "; ".join(d for _, d in found))

"""The source's changes as wal2json (format-version 2) writes them, one JSON
document per row of `pg_logical_slot_peek_changes`, grouped into the
committed transactions they belong to. Pure: no I/O.

Every value is kept as the text PostgreSQL printed it (numbers are parsed
as text, booleans turned into `true`/`false`), so the target reads it back
through its column's input function, exactly. A column an UPDATE leaves out
is one whose value did not change and sits in TOAST storage (wal2json does
not print it): it is `absent`, never NULL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

INSERT, UPDATE, DELETE, TRUNCATE = "I", "U", "D", "T"
KINDS = frozenset({INSERT, UPDATE, DELETE, TRUNCATE})


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    value: str | None


@dataclass(frozen=True)
class Change:
    """One row change: its kind, the new row (`columns`, INSERT and UPDATE)
    and the old row's identity (`identity`, UPDATE and DELETE)."""

    kind: str
    table: str  # schema.table
    columns: tuple[Column, ...] = ()
    identity: tuple[Column, ...] = ()

    def values(self) -> dict[str, str | None]:
        return {c.name: c.value for c in self.columns}

    def old(self) -> dict[str, str | None]:
        return {c.name: c.value for c in self.identity}


@dataclass(frozen=True)
class Transaction:
    """One committed source transaction: `end` is the LSN just past its
    commit record (what the slot is advanced to once it is applied) and
    `committed_at` the source's commit time."""

    xid: int
    end: str
    committed_at: str
    changes: tuple[Change, ...]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _columns(found: Sequence[dict[str, Any]] | None) -> tuple[Column, ...]:
    return tuple(Column(c["name"], c["type"], _text(c.get("value"))) for c in found or ())


def parse(document: str) -> dict[str, Any]:
    """One wal2json document; numbers kept as their text."""
    parsed: dict[str, Any] = json.loads(document, parse_int=str, parse_float=str)
    return parsed


def change_of(doc: dict[str, Any]) -> Change:
    return Change(
        kind=doc["action"],
        table=f"{doc['schema']}.{doc['table']}",
        columns=_columns(doc.get("columns")),
        identity=_columns(doc.get("identity")),
    )


def transactions(rows: Iterable[tuple[str, str, str]]) -> list[Transaction]:
    """Whole transactions from peeked rows `(lsn, xid, data)` in order; an
    unfinished one at the end (never, as decoding stops between
    transactions) is left out. Messages (`M`) are ignored."""
    found: list[Transaction] = []
    changes: list[Change] = []
    started_at = ""
    for lsn, xid, data in rows:
        doc = parse(data)
        action = doc["action"]
        if action == "B":
            changes, started_at = [], str(doc.get("timestamp", ""))
        elif action == "C":
            stamp = str(doc.get("timestamp") or started_at)
            found.append(Transaction(int(xid), lsn, stamp, tuple(changes)))
            changes = []
        elif action in KINDS:
            changes.append(change_of(doc))
    return found

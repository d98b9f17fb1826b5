"""A live table as one snapshot saw it, and a row-by-row comparison.

The table's history (tests.support.live_table) holds every row version with
the transactions that wrote and ended it; the versions a snapshot saw are
those whose writer it sees and whose ender it does not
(`pg_visible_in_snapshot`, given the snapshot's `pg_current_snapshot()`
text). Rows stream sorted by key from server-side cursors, so a comparison
of a million rows holds a few thousand in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from tests.support.live_table import COLUMNS

Row = tuple[Any, ...]
DIFFERENCES = ("missing", "extra", "changed", "repeated", "repeated in expected")
AS_OF = """
SELECT {columns} FROM {table}_history
WHERE pg_visible_in_snapshot(created_xid, %(xids)s::pg_snapshot)
  AND (deleted_xid IS NULL OR NOT pg_visible_in_snapshot(deleted_xid, %(xids)s::pg_snapshot))
ORDER BY id
"""
# The table against its history's live versions, both ways: 0 when every
# write was kept.
UNKEPT = """
SELECT count(*) FROM (
  (SELECT {columns} FROM {table} EXCEPT ALL
   SELECT {columns} FROM {table}_history WHERE deleted_xid IS NULL)
  UNION ALL
  (SELECT {columns} FROM {table}_history WHERE deleted_xid IS NULL EXCEPT ALL
   SELECT {columns} FROM {table})
) AS d
"""
UNSEEN = """
SELECT count(*) FROM {table}_history
WHERE NOT pg_visible_in_snapshot(created_xid, %(xids)s::pg_snapshot) AND written_at <= %(until)s
"""


def stream(url: str, query: str, params: dict[str, Any] | None = None) -> Iterator[Row]:
    """The rows of `query`, fetched a few thousand at a time."""
    with psycopg.connect(url) as conn, conn.cursor(name="rows") as cur:
        cur.itersize = 5000
        cur.execute(query.encode(), params)
        yield from cur


def as_of(url: str, table: str, xids: str, columns: Sequence[str] = COLUMNS) -> Iterator[Row]:
    """The rows of `table` the snapshot `xids` (xmin:xmax:xip,…) saw, by key."""
    query = AS_OF.format(columns=", ".join(columns), table=table)
    return stream(url, query, {"xids": xids})


def rows_of(url: str, table: str, columns: Sequence[str] = COLUMNS) -> Iterator[Row]:
    """The rows of `table` now, by key (the first column)."""
    return stream(url, f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}")


def unkept_writes(url: str, table: str, columns: Sequence[str] = COLUMNS) -> int:
    """Rows in which `table` and its history's live versions differ."""
    return _count(url, UNKEPT.format(columns=", ".join(columns), table=table), {})


def unseen_versions(url: str, table: str, xids: str, until: datetime) -> int:
    """Row versions written up to `until` that the snapshot `xids` did not see."""
    return _count(url, UNSEEN.format(table=table), {"xids": xids, "until": until})


def _count(url: str, query: str, params: dict[str, Any]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class Diff:
    """How `actual` differs from `expected`: counts of each difference, and
    a few examples of each (keys; (expected, actual) rows when changed)."""

    samples: int = 5
    rows: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Any]] = field(default_factory=dict)

    def note(self, kind: str, example: Any) -> None:
        self.counts[kind] += 1
        found = self.examples.setdefault(kind, [])
        if len(found) < self.samples:
            found.append(example)

    @property
    def same(self) -> bool:
        return not any(self.counts[kind] for kind in DIFFERENCES)

    def __str__(self) -> str:
        head = f"{self.rows['expected']} rows expected, {self.rows['actual']} found"
        kinds = [
            f"{self.counts[k]} {k}, e.g. {self.examples[k]}" for k in DIFFERENCES if self.counts[k]
        ]
        return "; ".join([head, *kinds])


def diff(expected: Iterable[Row], actual: Iterable[Row], samples: int = 5) -> Diff:
    """Compare two row streams sorted by key (each row's first value): rows
    missing, extra, changed, and keys found more than once."""
    found = Diff(samples)
    want = _once(expected, found, "expected", "repeated in expected")
    got = _once(actual, found, "actual", "repeated")
    w, g = next(want, None), next(got, None)
    while w is not None or g is not None:
        if g is None or (w is not None and w[0] < g[0]):
            assert w is not None
            found.note("missing", w[0])
            w = next(want, None)
        elif w is None or g[0] < w[0]:
            found.note("extra", g[0])
            g = next(got, None)
        else:
            if w != g:
                found.note("changed", (w, g))
            w, g = next(want, None), next(got, None)
    return found


def _once(rows: Iterable[Row], found: Diff, side: str, repeated: str) -> Iterator[Row]:
    """Each key's first row, in order; a repeated key is noted, not passed on."""
    last: Any = None
    for row in rows:
        found.rows[side] += 1
        if last is not None and row[0] < last:
            raise ValueError(f"{side} rows are not sorted by key: {row[0]!r} after {last!r}")
        if last is not None and row[0] == last:
            found.note(repeated, row[0])
            continue
        last = row[0]
        yield row

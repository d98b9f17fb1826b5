"""How extract cuts a source table into chunks, each copied by one statement
in one target transaction.

- An integer key (smallint, integer, bigint): ranges of equal width between
  the smallest and the greatest key, computed (no scan beyond min and max).
- Any other orderable key (text, uuid, numeric, dates, ...): ranges between
  boundaries sampled from the key's values (every value for a small table, a
  block sample of a big one), so chunks hold about as many rows each.
- A key without an ordering (or a table planned without one): ranges of the
  table's pages by `ctid`, which PostgreSQL reads with a TID range scan.

A composite key is cut by its first column, which need not be unique: the
ranges still hold every row once, but a value held by many rows cannot be
split. When that column's values give fewer than half the chunks asked for
(a few tenants in a big table, say), the table is cut by `ctid` instead.

Ranges are half-open, `lo <= x < hi`; the first has no lower bound and the
last no upper bound, so together they cover every row of the snapshot,
whatever its values, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from streams.dataplane.catalog import regname
from streams.dataplane.database import Conn
from streams.dataplane.sql import table

INTEGERS = frozenset({"smallint", "integer", "bigint"})
MAX_CHUNKS = 1024  # per table: a chunk is a checkpoint row and a transaction
SAMPLE_ROWS = 200_000  # about how many keys a big table's boundaries are sampled from
PAGE_ROWS_GUESS = 50  # rows per page when a table's statistics are missing


@dataclass(frozen=True)
class Chunk:
    """One range of the source: by `key` values, or by `ctid` pages."""

    by: str  # "key" or "ctid"
    lo: str | None
    hi: str | None

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "lo": self.lo, "hi": self.hi}

    @classmethod
    def of(cls, found: dict[str, Any]) -> Chunk:
        return cls(str(found["by"]), found.get("lo"), found.get("hi"))

    def where(self, key: str) -> sql.Composable:
        """The chunk's rows as a condition on the source table."""
        column: sql.Composable = sql.Identifier(key) if self.by == "key" else sql.SQL("ctid")
        parts: list[sql.Composable] = []
        if self.lo is not None:
            parts.append(sql.SQL("{} >= {}").format(column, self._bound(self.lo)))
        if self.hi is not None:
            parts.append(sql.SQL("{} < {}").format(column, self._bound(self.hi)))
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")

    def _bound(self, value: str) -> sql.Composable:
        if self.by == "ctid":
            return sql.SQL("{}::tid").format(sql.Literal(f"({int(value)},0)"))
        return sql.Literal(value)  # an untyped literal takes the key's type


def count_for(rows: int, chunk_rows: int) -> int:
    """How many chunks `rows` rows make at about `chunk_rows` each."""
    return max(1, min(MAX_CHUNKS, -(-rows // max(1, chunk_rows))))


def integer_ranges(low: int, high: int, parts: int) -> list[Chunk]:
    """`parts` ranges of equal width over keys `low`..`high`."""
    width = max(1, -(-(high - low + 1) // parts))
    edges = list(range(low + width, high + 1, width))
    return _between([str(e) for e in edges], "key")


def page_ranges(pages: int, parts: int) -> list[Chunk]:
    """`parts` ranges of equal page counts over a table of `pages` pages."""
    width = max(1, -(-pages // parts))
    return _between([str(p) for p in range(width, pages, width)], "ctid")


def _between(edges: list[str], by: str) -> list[Chunk]:
    bounds: list[str | None] = [None, *edges, None]
    return [Chunk(by, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


async def plan(
    conn: Conn,
    name: str,
    key: str,
    key_type: str,
    rows: int,
    chunk_rows: int,
    *,
    unique: bool = True,
) -> list[Chunk]:
    """The chunks of source table `name` (read in `conn`'s snapshot), by
    column `key` (of type `key_type`; `unique`: no value in two rows)."""
    parts = count_for(rows, chunk_rows)
    if parts == 1:
        return [Chunk("key", None, None)]
    cuts = await _key_ranges(conn, name, key, key_type, rows, parts)
    if cuts is None or (not unique and 2 * len(cuts) < parts):
        return page_ranges(await _pages(conn, name), parts)
    return cuts


async def _key_ranges(
    conn: Conn, name: str, key: str, key_type: str, rows: int, parts: int
) -> list[Chunk] | None:
    """About `parts` ranges of `key`'s values (None: its type has no ordering)."""
    if key_type in INTEGERS:
        query = sql.SQL("SELECT min({k})::bigint, max({k})::bigint FROM {t}").format(
            k=sql.Identifier(key), t=table(name)
        )
        row = await (await conn.execute(query)).fetchone()
        if row is None or row[0] is None:
            return [Chunk("key", None, None)]
        return integer_ranges(int(row[0]), int(row[1]), parts)
    if await _orderable(conn, key_type):
        return _between(await _sampled_edges(conn, name, key, rows, parts), "key")
    return None


async def _orderable(conn: Conn, key_type: str) -> bool:
    """Whether the key's type has a default b-tree ordering."""
    row = await (
        await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod"
            " WHERE a.amname = 'btree' AND c.opcdefault"
            " AND c.opcintype = (SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype"
            " ELSE t.oid END FROM pg_type t WHERE t.oid = %s::regtype))",
            (key_type,),
        )
    ).fetchone()
    return bool(row and row[0])


async def _sampled_edges(conn: Conn, name: str, key: str, rows: int, parts: int) -> list[str]:
    """Boundaries splitting the key's values into `parts` groups of about
    equal size (from a block sample when the table is big), in key order."""
    fractions = [i / parts for i in range(1, parts)]
    sample: sql.Composable = sql.SQL("")
    if rows > SAMPLE_ROWS:
        percent = max(0.01, min(100.0, 100.0 * SAMPLE_ROWS / rows))
        sample = sql.SQL(" TABLESAMPLE SYSTEM ({})").format(sql.Literal(percent))
    query = sql.SQL(
        "SELECT d.e::text FROM (SELECT DISTINCT unnest(percentile_disc({f}::float8[])"
        " WITHIN GROUP (ORDER BY {k})) AS e FROM {t}{sample}) AS d"
        " WHERE d.e IS NOT NULL ORDER BY d.e"
    ).format(f=sql.Literal(fractions), k=sql.Identifier(key), t=table(name), sample=sample)
    return [str(r[0]) for r in await (await conn.execute(query)).fetchall()]


async def _pages(conn: Conn, name: str) -> int:
    row = await (
        await conn.execute(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int",
            (regname(name),),
        )
    ).fetchone()
    return max(1, int(row[0])) if row else 1


async def orderable(conn: Conn, key_type: str) -> bool:
    """Whether values of `key_type` have a default b-tree ordering."""
    return await _orderable(conn, key_type)

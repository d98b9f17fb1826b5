"""Compare two tables row by row by checksum bisection (the pure rules are
streams.dataplane.bisection): the source as the mapping makes it, and the
target, each read on one connection in one snapshot.

Each range is asked of both sides at once: one query per side sums the
rows' hashes per segment (`width_bucket` of the first key column over the
cuts), so a level of the bisection costs one scan of the range on each
side; a segment whose figures differ is cut again, down to ranges compared
key by key. Every value is cast to the type the mapping gives it, and
hashed as extract and reconcile hash it (streams.dataplane.checksums), so
both sides print and hash alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg import sql

from streams.dataplane import checksums
from streams.dataplane.bisection import (
    FACTOR,
    LEAF_ROWS,
    Cuts,
    Found,
    Key,
    Range,
    Sums,
    by_segment,
    compare_rows,
    integer_cuts,
    is_leaf,
    segments,
)
from streams.dataplane.chunks import INTEGERS
from streams.dataplane.database import Conn

# The planner counts a group per key value (it estimates the segments by the
# key's statistics) and would sort the whole range, or give up a parallel
# scan for fear of gathering a row per key; there are a few segments, summed
# in memory by each worker. Set for the rest of the diff's transaction.
FEW_GROUPS = "SET LOCAL enable_sort = off; SET LOCAL parallel_tuple_cost = 0"


@dataclass(frozen=True)
class Order:
    """The first key column's type, as the mapping gives it, and how it cuts."""

    type: str
    orderable: bool

    @property
    def integer(self) -> bool:
        return self.type in INTEGERS


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a table (alias `s`), its compared values
    and key columns as expressions of one type on both sides."""

    conn: Conn
    rel: sql.Composable
    values: tuple[sql.Composable, ...]
    native: tuple[bool, ...]
    key: tuple[sql.Composable, ...]

    @property
    def first(self) -> sql.Composable:
        return self.key[0]

    def within(self, where: Range, order: Order) -> sql.Composable:
        parts: list[sql.Composable] = [sql.SQL("true")]
        if where.lo is not None:
            parts.append(sql.SQL("{} >= {}").format(self.first, _typed(where.lo, order)))
        if where.hi is not None:
            parts.append(sql.SQL("{} < {}").format(self.first, _typed(where.hi, order)))
        return sql.SQL(" AND ").join(parts)

    async def bounds(self, where: Range, order: Order) -> tuple[str, str] | None:
        query = sql.SQL("SELECT min({k})::text, max({k})::text FROM {t} AS s WHERE {w}").format(
            k=self.first, t=self.rel, w=self.within(where, order)
        )
        row = await (await self.conn.execute(query)).fetchone()
        return None if row is None or row[0] is None else (str(row[0]), str(row[1]))

    async def sampled_cuts(self, where: Range, order: Order, parts: int) -> list[str]:
        """Values cutting the range into about `parts` groups of as many rows,
        each above the range's lowest (so every segment is smaller than it)."""
        fractions = [i / parts for i in range(1, parts)]
        query = sql.SQL(
            "SELECT d.e::text FROM (SELECT DISTINCT unnest(percentile_disc({f}::float8[])"
            " WITHIN GROUP (ORDER BY {k})) AS e FROM {t} AS s WHERE {w}) AS d"
            " WHERE d.e > (SELECT {k} FROM {t} AS s WHERE {w} ORDER BY 1 LIMIT 1) ORDER BY d.e"
        ).format(f=sql.Literal(fractions), k=self.first, t=self.rel, w=self.within(where, order))
        return [str(r[0]) for r in await (await self.conn.execute(query)).fetchall()]

    async def figures(self, where: Range, order: Order, cuts: Cuts) -> list[Sums]:
        """Per segment of the range cut at `cuts`: its rows and checksum."""
        query = sql.SQL(
            "SELECT {b}, count(*), coalesce(sum({h}), 0)::text FROM {t} AS s WHERE {w} GROUP BY 1"
        ).format(
            b=self.bucket(order, cuts),
            h=checksums.row_hash(self.values, self.native),
            t=self.rel,
            w=self.within(where, order),
        )
        await self.conn.execute(FEW_GROUPS)
        found = await (await self.conn.execute(query)).fetchall()
        count = len(cuts.values) + 1
        return by_segment(((int(b), int(n), str(c)) for b, n, c in found), count)

    def bucket(self, order: Order, cuts: Cuts) -> sql.Composable:
        """A row's segment: 0 below the first cut, i from the i-th on."""
        if cuts.low is not None:
            return sql.SQL("least(({k})::bigint - {low}, {top}) / {w}").format(
                k=self.first,
                low=sql.Literal(cuts.low),
                top=sql.Literal(len(cuts.values) * cuts.width),
                w=sql.Literal(cuts.width),
            )
        return sql.SQL("width_bucket({k}, ARRAY[{c}]::{ty}[])").format(
            k=self.first,
            c=sql.SQL(", ").join(sql.Literal(c) for c in cuts.values),
            ty=sql.SQL(order.type),
        )

    async def rows(self, where: Range, order: Order) -> dict[Key, int]:
        """Every row of the range: its key (as text) and its hash."""
        query = sql.SQL("SELECT {h}, {k} FROM {t} AS s WHERE {w}").format(
            h=checksums.row_hash(self.values, self.native),
            k=sql.SQL(", ").join(sql.SQL("({})::text").format(k) for k in self.key),
            t=self.rel,
            w=self.within(where, order),
        )
        found = await (await self.conn.execute(query)).fetchall()
        return {tuple(str(v) for v in row[1:]): int(row[0]) for row in found}


def _typed(value: str, order: Order) -> sql.Composable:
    return sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(order.type))


@dataclass
class Bisection:
    """One comparison of `source` and `target`, walked range by range."""

    source: Side
    target: Side
    order: Order
    leaf_rows: int = LEAF_ROWS
    factor: int = FACTOR
    found: Found = field(default_factory=Found)

    async def run(self) -> Found:
        whole = Range(None, None)
        await self._walk(whole, None)
        return self.found

    async def _walk(self, where: Range, known: tuple[Sums, Sums] | None) -> None:
        if known is not None and is_leaf(*known, self.leaf_rows):
            return await self._leaf(where)
        cuts = await self._cuts(where)
        if not cuts:
            return await self._leaf(where)
        parts = segments(where, cuts.values)
        mine, theirs = await asyncio.gather(
            self.source.figures(where, self.order, cuts),
            self.target.figures(where, self.order, cuts),
        )
        if known is None:
            self.found.source, self.found.target = _total(mine), _total(theirs)
        for part, a, b in zip(parts, mine, theirs, strict=True):
            self.found.compared(part, a, b)
            if a != b:
                await self._walk(part, (a, b))
        return None

    async def _cuts(self, where: Range) -> Cuts:
        if not self.order.orderable:
            return Cuts([])
        if not self.order.integer:
            cuts = await self.source.sampled_cuts(where, self.order, self.factor)
            return Cuts(cuts or await self.target.sampled_cuts(where, self.order, self.factor))
        found = await asyncio.gather(
            self.source.bounds(where, self.order), self.target.bounds(where, self.order)
        )
        ends = [e for e in found if e is not None]
        if not ends:
            return Cuts([])
        low, high = min(int(e[0]) for e in ends), max(int(e[1]) for e in ends)
        return integer_cuts(low, high, self.factor)

    async def _leaf(self, where: Range) -> None:
        mine, theirs = await asyncio.gather(
            self.source.rows(where, self.order), self.target.rows(where, self.order)
        )
        if where.depth == 0:
            self.found.source = Sums(len(mine), sum(mine.values()))
            self.found.target = Sums(len(theirs), sum(theirs.values()))
        self.found.add(compare_rows(mine, theirs))


def _total(parts: Sequence[Sums]) -> Sums:
    return Sums(sum(p.rows for p in parts), sum(p.checksum for p in parts))

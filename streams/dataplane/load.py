"""load: upsert the transformed rows into the target table, in parallel key
ranges (slices), each batch committed with its slice's checkpoint.

The target table is created like the transformed rows (key as primary key)
when it does not exist; an existing one needs a unique key on that column.
"""

from __future__ import annotations

from psycopg import sql

from streams.dataplane import catalog, checkpoints
from streams.dataplane.batches import bounds_in, run_slices
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.sql import (
    create_like,
    split_points,
    staging,
    staging_name,
    table,
    upsert,
)

PHASE = "load"


async def run(ctx: PhaseContext) -> Outcome:
    mid, spec = ctx.migration_id, ctx.spec
    rows, name = staging(mid, "rows"), staging_name(mid, "rows")
    defs = await ctx.target.autocommit(lambda c: catalog.column_defs(c, name))
    key = await ctx.target.autocommit(lambda c: catalog.primary_key(c, name))
    names, target = [n for n, _ in defs], table(spec.target_table)
    wanted = max(1, min(spec.parallelism, ctx.limiter.limit))

    async def setup(conn: Conn) -> None:
        if await checkpoints.lock_slice(conn, mid, PHASE, 0) is not None:
            return
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (spec.target_table,))
        await conn.execute(create_like(target, defs, key))
        total = await catalog.count(conn, name)
        parts = max(1, min(wanted, total))
        splits = [await _first(conn, q) for q in split_points(rows, key, parts, total)]
        edges: list[str | None] = [None, *splits, None]
        for i in range(parts):
            lo, hi = edges[i], edges[i + 1]
            size = total * (i + 1) // parts - total * i // parts
            cp = Checkpoint(mid, PHASE, i, {"after": lo, "lo": lo, "hi": hi}, rows_total=size)
            await checkpoints.create(conn, cp)

    async def move(conn: Conn, after: str | None, upto: str) -> None:
        await conn.execute(upsert(target, rows, names, key, after, upto))

    await ctx.target.transaction(setup)
    return await run_slices(ctx, PHASE, bounds_in(rows, key), move)


async def _first(conn: Conn, query: sql.Composed) -> str | None:
    row = await (await conn.execute(query)).fetchone()
    return None if row is None else row[0]

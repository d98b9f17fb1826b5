"""load: the staged rows into the target table, in one transaction.

- A new target table is the staging table itself: its primary key is built
  once, now that every row is there (`CREATE UNIQUE INDEX`, then `ADD
  CONSTRAINT ... PRIMARY KEY USING INDEX`), and it is moved into place and
  renamed (no row is written again).
- An existing target table gets the staged rows by the spec's `on_existing`
  policy: `replace` (its rows are replaced, TRUNCATE and INSERT in one
  transaction), `append` (inserted; a key already there fails the load) or
  `upsert` (inserted, or updated by key; it needs a unique key on the key's
  columns, all of them for a composite key).

Either way the load is all or nothing, and the checkpoint that says so
commits with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from domain.spec import table_parts
from streams.dataplane import catalog, checkpoints, staged
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.sql import columns, merge, staging, staging_name, table

PHASE = "load"
SWAPPED = "swapped"


async def run(ctx: PhaseContext) -> Outcome:
    mid, name = ctx.migration_id, ctx.spec.target_table

    async def load(conn: Conn) -> int:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
        found = await staged.read(conn, mid)
        if await catalog.exists(conn, name):
            how = ctx.spec.on_existing
            target = table(name)
            if how == "replace":
                await conn.execute(sql.SQL("TRUNCATE {}").format(target))
            rows = staging(mid, "rows")
            await conn.execute(merge(target, rows, found.names, found.key, how))
        else:
            how = SWAPPED
            await _swap_in(conn, mid, name, found.key)
        cp = Checkpoint(mid, PHASE, 0, {"how": how}, rows_total=found.rows)
        await checkpoints.create(conn, cp)
        locked = await checkpoints.lock_slice(conn, mid, PHASE, 0)
        assert locked is not None
        await checkpoints.finish(conn, locked, {"rows": found.rows, "how": how})
        return found.rows

    async with ctx.limiter.slot():
        return Finished(await ctx.target.transaction(load))


async def _swap_in(conn: Conn, migration_id: str, name: str, key: Sequence[str]) -> None:
    """Make the staging table the target table `name`, then index it."""
    parts = table_parts(name)
    if len(parts) == 1:
        row = await (await conn.execute("SELECT current_schema()")).fetchone()
        parts = (str(row[0]) if row else "public", parts[0])
    schema, relname = parts
    staged_schema, staged_name = staging_name(migration_id, "rows").split(".", 1)
    if schema != staged_schema:
        await conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                staging(migration_id, "rows"), sql.Identifier(schema)
            )
        )
    await conn.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(schema, staged_name), sql.Identifier(relname)
        )
    )
    target, index = sql.Identifier(schema, relname), sql.Identifier(f"{relname}_pkey"[:63])
    await conn.execute(
        sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(index, target, columns(key))
    )
    await conn.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(
            target, index, index
        )
    )

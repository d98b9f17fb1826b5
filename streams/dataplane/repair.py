"""repair: re-copy exactly the keys the latest diff found differing, then
diff again.

Exactly once, in one target transaction: the repair's checkpoint is locked
(created when there is none) and names the diff it repairs. When it says
that diff was repaired already (a crash after the commit, before the
result), nothing is applied again. Else the source's rows of the missing and
different keys are copied, as the mapping makes them and in one snapshot of
the source, into a temporary table; the target's rows with those keys (and
its extra keys, when it holds only the migration's rows: see
streams.dataplane.diff) are deleted, the copied rows inserted, and the
checkpoint marked done with the figures. Two runs at once (a zombie and its
successor) take turns on the checkpoint's lock; the second finds it done.

The diff taken after it (streams.dataplane.diff) records what the target is
now, and forgets the checkpoint with the old diff's keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from psycopg import sql

from streams.dataplane import checkpoints, diff, diff_store
from streams.dataplane.bisection import Key
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.diff import Mapped
from streams.dataplane.errors import PhaseError
from streams.dataplane.sql import copy_in, select_list, table

PHASE = diff_store.REPAIR
ROWS = "migrator_repair_rows"  # the source's rows of the keys, in the target's transaction


async def run(ctx: PhaseContext) -> Outcome:
    await ctx.target.autocommit(diff_store.prepare)
    shape = await diff.mapped(ctx)
    only_ours = await diff.whole(ctx)
    async with ctx.limiter.slot():
        repaired = await ctx.target.transaction(partial(_apply, ctx, shape, only_ours))
    await diff.take(ctx)
    return Finished(repaired)


async def _checkpoint(conn: Conn, migration_id: str, diff_id: str, keys: int) -> Checkpoint:
    """The repair's checkpoint, locked until the transaction ends."""
    found = await checkpoints.lock_slice(conn, migration_id, PHASE, 0)
    if found is None:
        await checkpoints.create(
            conn, Checkpoint(migration_id, PHASE, 0, {"diff": diff_id}, rows_total=keys)
        )
        found = await checkpoints.lock_slice(conn, migration_id, PHASE, 0)
    assert found is not None
    return found


async def _apply(ctx: PhaseContext, shape: Mapped, only_ours: bool, conn: Conn) -> int:
    """Re-copy the latest diff's keys, once; the keys repaired."""
    mid = ctx.migration_id
    keys = await diff_store.latest(conn, mid)
    if keys is None:
        raise PhaseError("nothing to repair: no diff was taken")
    wanted = keys.missing + keys.different
    gone = wanted + (keys.extra if only_ours else [])
    cp = await _checkpoint(conn, mid, keys.diff_id, len(gone))
    if cp.done and cp.position.get("diff") == keys.diff_id:
        return int((cp.result or {}).get("keys", 0))  # repaired before a crash
    await diff.shaped(conn, shape.defs, shape.plan, ROWS)
    copied = await _copy(ctx, shape, wanted, conn)
    deleted = await _delete(ctx, shape, gone, conn)
    inserted = await conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            table(ctx.spec.target_table),
            sql.SQL(", ").join(map(sql.Identifier, shape.names)),
            sql.SQL(", ").join(map(sql.Identifier, shape.names)),
            sql.Identifier(ROWS),
        )
    )
    result = {
        "diff": keys.diff_id,
        "keys": len(gone),
        "copied": copied,
        "deleted": deleted,
        "inserted": inserted.rowcount,
    }
    await checkpoints.finish(conn, cp, result)
    return len(gone)


def key_set(keys: Sequence[Key], types: Sequence[str]) -> sql.Composable:
    """`keys` as a query of typed rows, one column per key column."""
    arrays = [
        sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(sql.Literal(k[i]) for k in keys))
        for i in range(len(types))
    ]
    names = [sql.Identifier(f"k{i}") for i in range(len(types))]
    return sql.SQL("SELECT {} FROM unnest({}) AS u({})").format(
        sql.SQL(", ").join(
            sql.SQL("u.{}::{}").format(n, sql.SQL(t)) for n, t in zip(names, types, strict=True)
        ),
        sql.SQL(", ").join(arrays),
        sql.SQL(", ").join(names),
    )


def _among(key: Sequence[sql.Composable], keys: Sequence[Key], shape: Mapped) -> sql.Composable:
    types = [shape.type_of(k) for k in shape.key]
    return sql.SQL("({}) IN ({})").format(sql.SQL(", ").join(key), key_set(keys, types))


async def _copy(ctx: PhaseContext, shape: Mapped, keys: Sequence[Key], conn: Conn) -> int:
    """Copy the source's rows of `keys`, as mapped, into the temporary table."""
    if not keys:
        return 0
    values = diff.source_values(shape)
    query = sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT binary)").format(
        select_list(shape.plan),
        table(ctx.spec.source_table),
        _among([values[k] for k in shape.key], keys, shape),
    )
    into = conn.cursor()
    async with (
        into.copy(copy_in(sql.Identifier(ROWS), shape.names)) as writer,
        ctx.source.connection() as src,
        src.transaction(),
    ):
        await diff.pinned(src)
        async with src.cursor().copy(query) as out:
            async for data in out:
                await writer.write(data)
    return into.rowcount


async def _delete(ctx: PhaseContext, shape: Mapped, keys: Sequence[Key], conn: Conn) -> int:
    if not keys:
        return 0
    values = diff.target_values(shape)
    done = await conn.execute(
        sql.SQL("DELETE FROM {} AS s WHERE {}").format(
            table(ctx.spec.target_table), _among([values[k] for k in shape.key], keys, shape)
        )
    )
    return done.rowcount

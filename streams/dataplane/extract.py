"""extract: the source table into staging (`raw_*` in the target database),
in key-ordered batches streamed with binary COPY from source to target."""

from __future__ import annotations

from streams.dataplane import catalog, checkpoints, fit
from streams.dataplane.batches import run_slices
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import SpecError
from streams.dataplane.sql import copy_in, copy_out, create_like, next_batch, staging, table

PHASE = "extract"


async def run(ctx: PhaseContext) -> Outcome:
    spec = ctx.spec
    defs = await ctx.source.autocommit(lambda c: catalog.column_defs(c, spec.source_table))
    names = [n for n, _ in defs]
    await fit.prepare(ctx, names)  # the key and every column type, before any copy
    raw, src, key = staging(ctx.migration_id, "raw"), table(spec.source_table), spec.source_key

    async def setup(conn: Conn) -> None:
        if await checkpoints.lock_slice(conn, ctx.migration_id, PHASE, 0) is None:
            async with ctx.source.connection() as source:
                total = await checked_key(source, spec.source_table, key)
            await conn.execute(create_like(raw, defs, key))
            cp = Checkpoint(ctx.migration_id, PHASE, 0, {"after": None}, rows_total=total)
            await checkpoints.create(conn, cp)

    async def bounds(
        _: Conn, after: str | None, hi: str | None, size: int
    ) -> tuple[str | None, int]:
        async with ctx.source.connection() as source:
            return await catalog.batch_bounds(source, next_batch(src, key, after, hi, size))

    async def move(conn: Conn, after: str | None, upto: str) -> None:
        async with (
            ctx.source.connection() as source,
            source.cursor().copy(copy_out(src, names, key, after, upto)) as out,
            conn.cursor().copy(copy_in(raw, names)) as into,
        ):
            async for chunk in out:
                await into.write(chunk)

    await ctx.target.transaction(setup)
    return await run_slices(ctx, PHASE, bounds, move)


async def checked_key(source: Conn, name: str, key: str) -> int:
    """The source's row count, once its key is known to identify every row:
    no NULL and no repeated value (SpecError saying which, before any copy)."""
    total, nulls = await catalog.count_keys(source, name, key)
    if nulls:
        raise SpecError(
            f"source key {key} of {name} is NULL in {nulls} of {total} rows;"
            " the key must identify every row"
        )
    if not await catalog.has_unique_index(source, name, key):
        repeated, sample = await catalog.repeated_keys(source, name, key)
        if repeated:
            raise SpecError(
                f"source key {key} of {name} is not unique: {repeated} values occur more"
                f" than once, e.g. {', '.join(sample)}"
            )
    return total

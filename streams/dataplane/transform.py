"""transform: the declarative column mapping applied in SQL, staging `raw_*`
into `rows_*` batch by batch, inside the target database."""

from __future__ import annotations

from psycopg import sql

from domain import errors
from domain.spec import Column
from streams.dataplane import catalog, checkpoints
from streams.dataplane.batches import bounds_in, run_slices
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import SpecError
from streams.dataplane.sql import create_transformed, staging, staging_name, transform_into

PHASE = "transform"


def key_column(plan: tuple[Column, ...], source_key: str) -> str:
    """The transformed rows' key: the column computed from the source key alone."""
    for column in plan:
        if column.sources == (source_key,) and column.is_plain:
            return column.target
    for column in plan:
        if column.sources == (source_key,):
            return column.target
    raise SpecError(f"the mapping drops the source key {source_key}; keep or rename it")


async def run(ctx: PhaseContext) -> Outcome:
    mid, key = ctx.migration_id, ctx.spec.source_key
    raw, rows = staging(mid, "raw"), staging(mid, "rows")
    names = [
        n
        for n, _ in await ctx.target.autocommit(
            lambda c: catalog.column_defs(c, staging_name(mid, "raw"))
        )
    ]
    try:
        plan = ctx.mapping.plan(names)
    except errors.SpecError as exc:  # the spec does not fit this source: a phase's failure
        raise SpecError(str(exc)) from None
    target_key = key_column(plan, key)

    async def setup(conn: Conn) -> None:
        if await checkpoints.lock_slice(conn, mid, PHASE, 0) is None:
            await conn.execute(create_transformed(rows, raw, plan))
            await conn.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                    rows, sql.Identifier(target_key)
                )
            )
            total = await catalog.count(conn, staging_name(mid, "raw"))
            await checkpoints.create(
                conn, Checkpoint(mid, PHASE, 0, {"after": None}, rows_total=total)
            )

    async def move(conn: Conn, after: str | None, upto: str) -> None:
        await conn.execute(transform_into(rows, raw, plan, key, after, upto))

    await ctx.target.transaction(setup)
    return await run_slices(ctx, PHASE, bounds_in(raw, key), move)

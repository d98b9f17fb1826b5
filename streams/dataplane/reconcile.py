"""reconcile: counts and checksums of the source, the staged and transformed
rows, and the target; on a match the staging tables are dropped, in the same
transaction that records the result. A mismatch fails the phase with the
figures (staging is kept for inspection)."""

from __future__ import annotations

from typing import Any

from streams.dataplane import catalog, checkpoints
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import ReconcileMismatch
from streams.dataplane.sql import checksum, staging, staging_name, table

PHASE = "reconcile"


def mismatches(figures: dict[str, Any]) -> list[str]:
    wrong = []
    if figures["source_rows"] != figures["staged_rows"]:
        wrong.append(f"source has {figures['source_rows']} rows, staging {figures['staged_rows']}")
    if figures["staged_rows"] != figures["transformed_rows"]:
        wrong.append(
            f"{figures['transformed_rows']} transformed of {figures['staged_rows']} staged"
        )
    if figures["target_rows"] != figures["transformed_rows"]:
        wrong.append(f"target has {figures['target_rows']} of {figures['transformed_rows']} rows")
    if figures["target_checksum"] != figures["transformed_checksum"]:
        wrong.append("target checksum differs from the transformed rows'")
    return wrong


async def run(ctx: PhaseContext) -> Outcome:
    spec = ctx.spec
    async with ctx.source.connection() as source:
        source_rows = await catalog.count(source, spec.source_table)
    return await ctx.target.transaction(lambda conn: _reconcile(ctx, conn, source_rows))


async def _reconcile(ctx: PhaseContext, conn: Conn, source_rows: int) -> Finished:
    mid = ctx.migration_id
    rows, name = staging(mid, "rows"), staging_name(mid, "rows")
    names = [n for n, _ in await catalog.column_defs(conn, name)]
    key = await catalog.primary_key(conn, name)
    transformed = await (await conn.execute(checksum(rows, names))).fetchone()
    target = await (
        await conn.execute(checksum(table(ctx.spec.target_table), names, within=rows, key=key))
    ).fetchone()
    assert transformed is not None and target is not None
    figures = {
        "source_rows": source_rows,
        "staged_rows": await catalog.count(conn, staging_name(mid, "raw")),
        "transformed_rows": int(transformed[0]),
        "target_rows": int(target[0]),
        "transformed_checksum": transformed[1],
        "target_checksum": target[1],
    }
    wrong = mismatches(figures)
    if wrong:
        raise ReconcileMismatch("reconciliation failed: " + "; ".join(wrong))
    cp = Checkpoint(mid, PHASE, 0, {}, rows_total=figures["target_rows"])
    await checkpoints.create(conn, cp)
    await checkpoints.finish(conn, cp, {"rows": figures["target_rows"], **figures})
    await drop_staging(conn, mid)
    return Finished(figures["target_rows"])


async def drop_staging(conn: Conn, migration_id: str) -> None:
    for stage in ("raw", "rows"):
        await conn.execute(
            "DROP TABLE IF EXISTS "
            + ".".join(f'"{p}"' for p in staging_name(migration_id, stage).split("."))
        )

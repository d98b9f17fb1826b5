"""reconcile: the target's rows against the source's, as extract read them.

The source's figures are those extract took chunk by chunk in its snapshot
(rows and checksum of the mapped rows; streams.dataplane.staged): reconcile
never reads the source again, which may have changed since, so a source that
takes writes meanwhile reconciles against what was copied. It reads the
target once: the whole table when load swapped the staged rows in or
replaced the target's rows, else (append, upsert) the target's rows whose
key (every column of it) was staged. Checksums hash each value by its type where the type is
built in, else by its text (streams.dataplane.checksums).

On a match the staging table (if any is left) is dropped in the transaction
that records the result; a mismatch fails the phase with the figures, and
staging is kept for inspection.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from streams.dataplane import catalog, checkpoints, checksums, staged
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import ReconcileMismatch
from streams.dataplane.sql import STABLE_TEXT, key_match, staging, staging_name, table

PHASE = "reconcile"
WHOLE = frozenset({"swapped", "replace"})  # how load left the target: it is the staged rows


def mismatches(figures: dict[str, Any]) -> list[str]:
    wrong = []
    if figures["copied_rows"] != figures["source_rows"]:
        wrong.append(
            f"the source had {figures['source_rows']} rows in the snapshot,"
            f" its chunks {figures['copied_rows']}"
        )
    if figures["target_rows"] != figures["copied_rows"]:
        wrong.append(f"target has {figures['target_rows']} of {figures['copied_rows']} rows")
    elif figures["target_checksum"] != figures["source_checksum"]:
        wrong.append("target checksum differs from the source's")
    return wrong


async def run(ctx: PhaseContext) -> Outcome:
    async with ctx.limiter.slot():
        return await ctx.target.transaction(lambda conn: _reconcile(ctx, conn))


async def _how_loaded(conn: Conn, migration_id: str) -> str:
    found = await checkpoints.load(conn, migration_id, "load")
    return str((found[0].result or {}).get("how", "upsert")) if found else "upsert"


async def _reconcile(ctx: PhaseContext, conn: Conn) -> Finished:
    mid = ctx.migration_id
    await conn.execute(STABLE_TEXT)  # text prints as extract's source checksums printed it
    source = await staged.read(conn, mid)
    how = await _how_loaded(conn, mid)
    target = table(ctx.spec.target_table)
    where: sql.Composable | None = None
    values: list[sql.Composable] = [sql.SQL("s.{}").format(sql.Identifier(n)) for n in source.names]
    if how not in WHOLE:
        rows = staging(mid, "rows")
        where = sql.SQL("EXISTS (SELECT 1 FROM {} AS w WHERE {})").format(
            rows, key_match(source.key, "w", "s")
        )
        types = dict(await catalog.column_defs(conn, staging_name(mid, "rows")))
        # the target's own columns may be typed otherwise: hash them as staged
        values = [
            sql.SQL("s.{}::{}").format(sql.Identifier(n), sql.SQL(types[n])) for n in source.names
        ]
    row = await (
        await conn.execute(checksums.figures(values, source.native, target, where))
    ).fetchone()
    assert row is not None
    figures = {
        **source.figures(),
        "loaded": how,
        "target_rows": int(row[0]),
        "target_checksum": str(row[1]),
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
    for stage in ("raw", "rows"):  # raw_*: staging of extracts from before one-pass copies
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging(migration_id, stage)))

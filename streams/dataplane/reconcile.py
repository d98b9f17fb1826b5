"""reconcile: counts and checksums of the source, the staged and transformed
rows, and the target; on a match the staging tables are dropped, in the same
transaction that records the result. A mismatch fails the phase with the
figures (staging is kept for inspection).

The source's figures are those extract took in the snapshot it copied
(its checkpoint holds them): reconcile never reads the live source, which
may have changed since, so a source that takes writes meanwhile reconciles
against what was copied."""

from __future__ import annotations

from typing import Any

from streams.dataplane import catalog, checkpoints, extract
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import PhaseError, ReconcileMismatch
from streams.dataplane.snapshots import snapshot_id
from streams.dataplane.sql import STABLE_TEXT, checksum, staging, staging_name, table

PHASE = "reconcile"


def mismatches(figures: dict[str, Any]) -> list[str]:
    wrong = []
    if figures["source_rows"] != figures["staged_rows"]:
        wrong.append(f"source has {figures['source_rows']} rows, staging {figures['staged_rows']}")
    elif figures.get("source_checksum") not in (None, figures.get("staged_checksum")):
        wrong.append("staged rows' checksum differs from the source's")
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
    return await ctx.target.transaction(lambda conn: _reconcile(ctx, conn))


async def source_figures(conn: Conn, migration_id: str) -> dict[str, Any]:
    """The source's rows and checksum in extract's snapshot, and its id (an
    extract from before snapshots recorded only its count)."""
    found = await checkpoints.load(conn, migration_id, extract.PHASE)
    if not found:
        raise PhaseError("extract left no checkpoint: nothing to reconcile against")
    source = found[0].position.get("source") or {"rows": found[0].rows_total}
    return {
        "source_rows": int(source["rows"]),
        "source_checksum": source.get("checksum"),
        "source_snapshot": snapshot_id(found[0].position),
    }


async def _staged(conn: Conn, migration_id: str) -> dict[str, Any]:
    raw = staging_name(migration_id, "raw")
    names = [n for n, _ in await catalog.column_defs(conn, raw)]
    row = await (await conn.execute(checksum(staging(migration_id, "raw"), names))).fetchone()
    assert row is not None
    return {"staged_rows": int(row[0]), "staged_checksum": row[1]}


async def _reconcile(ctx: PhaseContext, conn: Conn) -> Finished:
    mid = ctx.migration_id
    await conn.execute(STABLE_TEXT)  # values print as extract's source checksum printed them
    rows, name = staging(mid, "rows"), staging_name(mid, "rows")
    names = [n for n, _ in await catalog.column_defs(conn, name)]
    key = await catalog.primary_key(conn, name)
    transformed = await (await conn.execute(checksum(rows, names))).fetchone()
    target = await (
        await conn.execute(checksum(table(ctx.spec.target_table), names, within=rows, key=key))
    ).fetchone()
    assert transformed is not None and target is not None
    figures = {
        **await source_figures(conn, mid),
        **await _staged(conn, mid),
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

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
that records the result, and a clean diff (the whole table's figures, no key
compared) is sent; a mismatch is diffed row by row (streams.dataplane.diff:
the keys that differ, saved and sent) and fails the phase with the figures
and the diff's counts, and staging is kept for inspection.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from domain import DiffTaken
from streams.dataplane import catalog, checkpoints, checksums, diff, staged
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext, progress_of
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
    try:
        async with ctx.limiter.slot():
            finished, figures = await ctx.target.transaction(lambda conn: _reconcile(ctx, conn))
    except ReconcileMismatch as mismatch:
        raise ReconcileMismatch(f"{mismatch}; {await _row_by_row(ctx)}") from None
    await ctx.answer(await _clean_diff(ctx, figures))
    return finished


async def _row_by_row(ctx: PhaseContext) -> str:
    """The diff of a mismatch, in a few words (it is saved and sent whole);
    a diff that fails leaves the mismatch's own figures as the reason."""
    try:
        found = await diff.take(ctx)
    except Exception as exc:  # the mismatch is the phase's failure, whatever the diff met
        return f"the row-by-row diff failed: {exc}"
    return f"row by row: {found.missing} missing, {found.extra} extra, {found.different} different"


async def _clean_diff(ctx: PhaseContext, figures: dict[str, Any]) -> DiffTaken:
    """The figures that matched, as a diff: one range, the whole table."""
    task = ctx.task
    slices = await ctx.target.autocommit(
        lambda c: checkpoints.load(c, task.migration_id, "extract")
    )
    whole = {"lo": None, "hi": None, "depth": 0, "same": True}
    sides = {
        f"{side}_{what}": figures[f"{side}_{what}"]
        for side in ("source", "target")
        for what in ("rows", "checksum")
    }
    return DiffTaken(
        result_id=f"{task.task_id}:diff",
        migration_id=task.migration_id,
        phase=task.phase,
        run=task.run,
        source_rows=figures["copied_rows"],
        target_rows=figures["target_rows"],
        samples={"missing": [], "extra": [], "different": []},
        ranges=({**whole, **sides, "source_rows": figures["copied_rows"]},),
        ranges_compared=1,
        snapshot=progress_of(slices).snapshot if slices else None,
        taken_at=str(figures.get("at", "")),
    )


async def _how_loaded(conn: Conn, migration_id: str) -> str:
    found = await checkpoints.load(conn, migration_id, "load")
    return str((found[0].result or {}).get("how", "upsert")) if found else "upsert"


async def _reconcile(ctx: PhaseContext, conn: Conn) -> tuple[Finished, dict[str, Any]]:
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
    at = await (await conn.execute("SELECT now()::text")).fetchone()
    return Finished(figures["target_rows"]), {**figures, "at": at[0] if at else ""}


async def drop_staging(conn: Conn, migration_id: str) -> None:
    for stage in ("raw", "rows"):  # raw_*: staging of extracts from before one-pass copies
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging(migration_id, stage)))

"""extract: the source table into staging (`raw_*` in the target database),
in key-ordered batches streamed with binary COPY from source to target, every
read in one snapshot of the source (streams.dataplane.snapshots).

The checkpoint names the snapshot (id, time, WAL LSN; so does every progress
event, which carries the checkpoint) and holds the source's figures taken in
it (rows, checksum of the rows): reconcile compares the staged rows with
them, never with a newer view of the source.

The rule when a snapshot is lost: a copy goes on only in the snapshot it
began in. Each batch reads in the snapshot its checkpoint names; when that
can no longer be imported (the run holding it ended: a pause, a restart, a
killed worker; the source restarted), the run empties staging, resets the
checkpoint to a new snapshot of its own with the reason (logged as a
warning, and in the progress events), and copies from the start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from psycopg import sql

from streams.dataplane import catalog, checkpoints, fit
from streams.dataplane.batches import run_slices
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Outcome, PhaseContext, Stopped
from streams.dataplane.database import Conn
from streams.dataplane.errors import PhaseError, SnapshotLost, SpecError
from streams.dataplane.snapshots import Holder, Snapshot, first_of, reading, snapshot_id
from streams.dataplane.sql import (
    STABLE_TEXT,
    checksum,
    copy_in,
    copy_out,
    create_like,
    next_batch,
    staging,
    table,
)

log = logging.getLogger(__name__)
PHASE = "extract"
RESTARTS = 3  # new snapshots one run may take before the phase fails


@dataclass(frozen=True)
class _Copy:
    """What one extract copies, from where to where."""

    ctx: PhaseContext
    defs: list[tuple[str, str]]
    src: sql.Identifier
    raw: sql.Identifier
    key: str

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.defs]


async def run(ctx: PhaseContext) -> Outcome:
    spec = ctx.spec
    defs = await ctx.source.autocommit(lambda c: catalog.column_defs(c, spec.source_table))
    await fit.prepare(ctx, [n for n, _ in defs])  # the key and every column type, before any copy
    raw, src = staging(ctx.migration_id, "raw"), table(spec.source_table)
    if not await first_of(ctx.limiter.holders, ctx.stop):
        return Stopped(None)  # asked to stop while waiting for a holder's slot
    holder = Holder(ctx.source)
    try:
        return await _extract(_Copy(ctx, defs, src, raw, spec.source_key), holder)
    finally:
        await holder.close()
        ctx.limiter.holders.release()


async def _extract(copy: _Copy, holder: Holder) -> Outcome:
    """Copy in the checkpoint's snapshot; start over in a new one when it is lost."""
    snapshot = await holder.take()
    await copy.ctx.target.transaction(partial(_setup, copy, snapshot))
    restarts = 0
    while True:
        try:
            return await run_slices(copy.ctx, PHASE, partial(_bounds, copy), partial(_move, copy))
        except SnapshotLost as lost:
            if restarts == RESTARTS:
                raise PhaseError(f"{lost}; gave up after {RESTARTS} new snapshots") from None
            restarts += 1
            await _start_over(copy, holder, lost)


async def _setup(copy: _Copy, snapshot: Snapshot, conn: Conn) -> None:
    mid = copy.ctx.migration_id
    if await checkpoints.lock_slice(conn, mid, PHASE, 0) is None:
        figures = await _source_figures(copy, snapshot.id)
        await conn.execute(create_like(copy.raw, copy.defs, copy.key))
        position = _position(snapshot, figures)
        await checkpoints.create(
            conn, Checkpoint(mid, PHASE, 0, position, rows_total=figures["rows"])
        )


def _position(snapshot: Snapshot, figures: dict[str, Any], why: str = "") -> dict[str, Any]:
    """A copy's starting checkpoint: no key yet, its snapshot and the source's figures in it."""
    position = {"after": None, "snapshot": snapshot.as_json(), "source": figures}
    return {**position, "restarted": why} if why else position


async def _source_figures(copy: _Copy, snapshot: str) -> dict[str, Any]:
    """The source's rows (its key checked first) and checksum, in `snapshot`."""
    async with reading(copy.ctx.source, snapshot) as source:
        total = await checked_key(source, copy.ctx.spec.source_table, copy.key)
        await source.execute(STABLE_TEXT)
        row = await (await source.execute(checksum(copy.src, copy.names))).fetchone()
    assert row is not None
    return {"rows": total, "checksum": row[1]}


async def _snapshot_of(copy: _Copy, conn: Conn) -> str | None:
    """The snapshot the checkpoint (locked by this batch already) reads in."""
    cp = await checkpoints.lock_slice(conn, copy.ctx.migration_id, PHASE, 0)
    return None if cp is None else snapshot_id(cp.position)


async def _bounds(
    copy: _Copy, conn: Conn, after: str | None, hi: str | None, size: int
) -> tuple[str | None, int]:
    async with reading(copy.ctx.source, await _snapshot_of(copy, conn)) as source:
        return await catalog.batch_bounds(source, next_batch(copy.src, copy.key, after, hi, size))


async def _move(copy: _Copy, conn: Conn, after: str | None, upto: str) -> None:
    async with (
        reading(copy.ctx.source, await _snapshot_of(copy, conn)) as source,
        source.cursor().copy(copy_out(copy.src, copy.names, copy.key, after, upto)) as out,
        conn.cursor().copy(copy_in(copy.raw, copy.names)) as into,
    ):
        async for chunk in out:
            await into.write(chunk)


async def _start_over(copy: _Copy, holder: Holder, lost: SnapshotLost) -> None:
    """Empty staging and reset the checkpoint to a snapshot of this run's
    (unless another run did so first), saying why."""
    ctx = copy.ctx
    snapshot = holder.alive()
    if snapshot is None or snapshot.id == lost.snapshot_id:
        snapshot = await holder.take()
    why = f"{lost}: re-copying from the start in snapshot {snapshot.id}"
    figures = await _source_figures(copy, snapshot.id)
    position = _position(snapshot, figures, why)
    cp = await ctx.target.transaction(partial(_reset, copy, lost.snapshot_id, position))
    if cp is not None:
        log.warning("%s extract: %s", ctx.migration_id, why)
        ctx.progress([cp])


async def _reset(
    copy: _Copy, lost: str | None, position: dict[str, Any], conn: Conn
) -> Checkpoint | None:
    cp = await checkpoints.lock_slice(conn, copy.ctx.migration_id, PHASE, 0)
    if cp is None or cp.done or snapshot_id(cp.position) != lost:
        return None  # another run started over already, or the copy finished
    await conn.execute(sql.SQL("TRUNCATE {}").format(copy.raw))
    await checkpoints.restart(conn, cp, position, int(position["source"]["rows"]))
    return cp


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

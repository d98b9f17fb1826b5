"""extract: the source table into staging (`rows_*` in the target database)
in one pass, chunk by chunk, every read in one snapshot of the source.

Planning (once per copy, in the snapshot): the key is checked (no NULL in
any of its columns, no repeated value or combination: streams.dataplane.fit),
the rows counted, and the table cut into chunks (streams.dataplane.chunks; by
the key's first column, for a composite key); the staging table is created
in the mapping's shape, without indexes; each chunk gets a checkpoint naming
the snapshot.

Copying: a run claims an unfinished chunk (several runs, in this process or
in other members of the group, share them; see checkpoints.claim) and, in
one target transaction, streams `COPY (SELECT <mapping> FROM source WHERE
<chunk>) TO STDOUT` into `COPY staging FROM STDIN` (binary) and marks the
chunk done with its rows, bytes and the source's checksum of them. A chunk
is there wholly or not at all: no key is needed for exactly-once, and a
crash loses at most the chunks in flight. The mapping (rename, drop, cast,
concat, trim, case, value map, default) runs in the source's SELECT, so the
rows land once, in the target's shape.

The snapshot is held by a keeper process of its own (streams.dataplane.keeper),
not by the run: a paused, revoked or killed run leaves it, and the run that
resumes the copy (in this process or another) goes on in it, chunk by chunk.
A table below PHASE_SNAPSHOT_KEEPER_MIN_BYTES (8 MiB) is copied in a snapshot
the run holds on a connection of its own: a process per tiny copy costs more than copying it
again after a crash.

With change capture (spec `cdc`), the source is checked first (streams.
dataplane.cdc.guards: refused before any copy), and every snapshot is that
of the migration's replication slot, created with it (a new snapshot
recreates the slot): the copy and the changes after it are the source's
whole history. Planning stores where capture starts (cdc.positions).

The rule when a snapshot is lost: a copy goes on only in the snapshot it
began in. A chunk that can no longer import it (its keeper ended: the
source restarted, or a pause or crash outlived the keeper's lease) makes the
run empty staging, plan again in a new snapshot of its own, record why (a
warning, and `restarted` in the first chunk's checkpoint) and copy from the
start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from psycopg import sql

from domain import errors
from domain.spec import Column
from streams.dataplane import catalog, checkpoints, checksums, chunks, fit, keeper, metrics, staged
from streams.dataplane.attempts import Attempts
from streams.dataplane.cdc import captures, guards, positions
from streams.dataplane.cdc.apply import Routes
from streams.dataplane.cdc.slots import create_with_snapshot, slot_name
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.chunks import Chunk
from streams.dataplane.context import Finished, Outcome, PhaseContext, Stopped
from streams.dataplane.database import Conn
from streams.dataplane.errors import (
    Interrupted,
    PhaseError,
    SnapshotLost,
    SpecError,
    TransientError,
)
from streams.dataplane.relay import relay
from streams.dataplane.snapshots import Holder, Snapshot, reading, snapshot_id
from streams.dataplane.sql import (
    STABLE_TEXT,
    copy_in,
    copy_out,
    create_shape,
    create_staged,
    expression,
    select_list,
    staging,
    staging_name,
    table,
)
from streams.kafka import tracing

log = logging.getLogger(__name__)
PHASE = staged.EXTRACT
RESTARTS = 3  # new snapshots one run may take before the phase fails
WAIT_FOR_OTHERS = 0.5  # seconds between looks at chunks other runs hold


@dataclass(frozen=True)
class _Copy:
    """What one extract copies, from where to where."""

    ctx: PhaseContext
    defs: list[tuple[str, str]]
    plan: tuple[Column, ...]
    key: tuple[str, ...]  # the source's key columns
    staged_key: tuple[str, ...]  # the key's columns as the mapping names them

    @property
    def src(self) -> sql.Identifier:
        return table(self.ctx.spec.source_table)

    @property
    def rows(self) -> sql.Identifier:
        return staging(self.ctx.migration_id, "rows")

    @property
    def names(self) -> list[str]:
        return [c.target for c in self.plan]

    @property
    def chunked_by(self) -> str:
        """The column chunks are ranges of: the key's (its first, for a composite key)."""
        return self.key[0]

    @property
    def key_type(self) -> str:
        return dict(self.defs)[self.chunked_by]


async def run(ctx: PhaseContext) -> Outcome:
    spec = ctx.spec
    defs = await ctx.source.autocommit(lambda c: catalog.column_defs(c, spec.source_table))
    if captures(spec) and not ctx.assisting:  # refused before anything is copied
        await ctx.source.autocommit(
            lambda c: guards.check_source(c, spec.source_table, spec.source_key)
        )
        Routes.of(ctx.mapping, spec.source_key, [n for n, _ in defs], spec.target_table)
    key = await fit.prepare(ctx, [n for n, _ in defs])  # the key and every type, before any copy
    try:
        plan = ctx.mapping.plan([n for n, _ in defs])
    except errors.SpecError as exc:  # the spec does not fit this source: a phase's failure
        raise SpecError(str(exc)) from None
    copy = _Copy(ctx, defs, plan, key, staged.key_columns(plan, key))
    if ctx.assisting:
        return await _chunks_of(copy, owner=False)
    return await _extract(copy)


class _Kept:
    """Snapshots held by keeper processes (streams.dataplane.keeper): they
    outlive the run, so a resumed copy goes on in them."""

    def __init__(self, copy: _Copy) -> None:
        self.ctx = copy.ctx

    async def take(self) -> Snapshot:
        ctx = self.ctx
        lease = ctx.target.settings.phase.snapshot_lease_seconds
        slot = slot_name(ctx.migration_id) if captures(ctx.spec) else ""
        return await keeper.keep(ctx.source, ctx.target, ctx.migration_id, lease, slot)

    async def close(self) -> None:
        """The keeper lets go by itself once the copy no longer needs it."""


async def _holder(copy: _Copy) -> _Kept | Holder:
    """Who holds the copy's snapshots: a keeper process, or this run for a
    table below PHASE_SNAPSHOT_KEEPER_MIN_BYTES (a process per tiny copy
    would cost more than copying it again after a crash)."""
    ctx = copy.ctx
    size = await ctx.source.autocommit(lambda c: catalog.size(c, ctx.spec.source_table))
    small = size < ctx.target.settings.phase.snapshot_keeper_min_bytes
    if not small:
        return _Kept(copy)
    if captures(ctx.spec):
        slot = slot_name(ctx.migration_id)
        return Holder(ctx.source, lambda c: create_with_snapshot(c, slot), replication=True)
    return Holder(ctx.source)


async def _extract(copy: _Copy) -> Outcome:
    """Copy in the checkpoints' snapshot; start over in a new one when it is lost."""
    ctx = copy.ctx
    holder = await _holder(copy)
    try:
        planned = await ctx.target.autocommit(
            lambda c: checkpoints.load(c, ctx.migration_id, PHASE)
        )
        if not planned:
            snapshot = await holder.take()
            await ctx.target.transaction(partial(_plan, copy, snapshot, None))
        await ctx.enlist()
        restarts = 0
        while True:
            try:
                return await _chunks_of(copy, owner=True)
            except SnapshotLost as lost:
                if restarts == RESTARTS:
                    raise PhaseError(f"{lost}; gave up after {RESTARTS} new snapshots") from None
                restarts += 1
                await _start_over(copy, await holder.take(), lost)
    finally:
        await holder.close()


async def _plan(copy: _Copy, snapshot: Snapshot, why: str | None, conn: Conn) -> bool:
    """Plan the copy in `snapshot` unless it is planned (False)."""
    ctx = copy.ctx
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"extract:{ctx.migration_id}",)
    )
    if await checkpoints.load(conn, ctx.migration_id, PHASE):
        return False
    async with reading(ctx.source, snapshot.id) as source:
        if snapshot.slot:  # change capture starts where the snapshot stands
            shape = await guards.shape_of(source, ctx.spec.source_table)
            await positions.start(conn, ctx.migration_id, snapshot.slot, snapshot.lsn, shape)
        total = await fit.checked_key(source, ctx.spec.source_table, copy.key)
        cuts = await chunks.plan(
            source,
            ctx.spec.source_table,
            copy.chunked_by,
            copy.key_type,
            total,
            ctx.spec.batch_size,
            unique=len(copy.key) == 1,
        )
    if await catalog.exists(conn, staging_name(ctx.migration_id, "rows")):
        await conn.execute(sql.SQL("TRUNCATE {}").format(copy.rows))
    else:
        await conn.execute(create_shape(copy.defs))
        await conn.execute(create_staged(copy.rows, copy.plan))
    native = await checksums.natively_hashed(
        conn, catalog.regname(staging_name(ctx.migration_id, "rows"))
    )
    first = staged.plan_position(copy.staged_key, copy.names, native, total)
    if why:
        first["restarted"] = why
    for i, cut in enumerate(cuts):
        position: dict[str, Any] = {"chunk": cut.as_json(), "snapshot": snapshot.as_json()}
        size = total * (i + 1) // len(cuts) - total * i // len(cuts)
        await checkpoints.create(
            conn,
            Checkpoint(
                ctx.migration_id,
                PHASE,
                i,
                {**position, **(first if i == 0 else {})},
                rows_total=size,
            ),
        )
    return True


async def _chunks_of(copy: _Copy, owner: bool) -> Outcome:
    """Copy unfinished chunks, up to the spec's parallelism at once, until
    none is left; the owner then waits for the chunks other runs hold."""
    ctx = copy.ctx
    found = await ctx.target.autocommit(lambda c: checkpoints.load(c, ctx.migration_id, PHASE))
    if not found:
        return Stopped(None)  # not planned (yet): an assistant has nothing to do
    native = [bool(n) for n in found[0].position["native"]]
    by_slice = {cp.slice: cp for cp in found}
    attempts = Attempts(ctx.target, ctx.worker_id)
    try:
        while not ctx.stop.is_set():
            runners = [
                _runner(copy, native, by_slice, attempts)
                for _ in range(max(1, ctx.spec.parallelism))
            ]
            await _all_or_none(runners)
            if ctx.stop.is_set() or not owner:
                break
            found = await ctx.target.autocommit(
                lambda c: checkpoints.load(c, ctx.migration_id, PHASE)
            )
            by_slice.update({cp.slice: cp for cp in found})
            if all(cp.done for cp in found):
                return Finished(sum(cp.rows_done for cp in found))
            await asyncio.sleep(WAIT_FOR_OTHERS)  # chunks another run holds
    finally:
        await attempts.close()
    return Stopped(None)


async def _runner(
    copy: _Copy, native: list[bool], by_slice: dict[int, Checkpoint], attempts: Attempts
) -> None:
    ctx = copy.ctx
    while not ctx.stop.is_set():
        async with ctx.limiter.slot():
            try:
                chunk = ctx.target.transaction(partial(_chunk, copy, native, attempts))
                cp = await tracing.within("extract chunk", chunk)
            except (TransientError, Interrupted):
                if ctx.stop.is_set():  # asked to stop while a database was away or mid-chunk
                    return
                raise
        if cp is None:
            return
        metrics.ROWS.labels(PHASE).inc(cp.rows_done)
        metrics.BATCHES.labels(PHASE).inc()
        by_slice[cp.slice] = cp
        ctx.progress(sorted(by_slice.values(), key=lambda c: c.slice))


async def _chunk(
    copy: _Copy, native: list[bool], attempts: Attempts, conn: Conn
) -> Checkpoint | None:
    """Claim one unfinished chunk and copy it, in this transaction (None: none left)."""
    ctx = copy.ctx
    cp = await checkpoints.claim(conn, ctx.migration_id, PHASE)
    if cp is None:
        return None
    await attempts.log(cp)
    tracing.note(chunk=cp.slice)
    cut = Chunk.of(cp.position["chunk"])
    where = cut.where(copy.chunked_by)
    exprs = [expression(c) for c in copy.plan]
    snapshot = snapshot_id(cp.position)

    async def counted() -> tuple[int, int]:
        """The source's count and checksum of the chunk, in the snapshot."""
        async with reading(ctx.source, snapshot) as source:
            await source.execute(STABLE_TEXT)
            figures = checksums.figures(exprs, native, copy.src, where)
            row = await (await source.execute(figures)).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    # the figures are read beside the copy, on a connection of their own
    figures = asyncio.ensure_future(counted())
    try:
        into = conn.cursor()
        async with into.copy(copy_in(copy.rows, copy.names)) as writer:
            query = copy_out(copy.src, select_list(copy.plan), where)
            copied = await relay(ctx.source, snapshot, query, writer.write)
        rows, checksum = await figures
    except TransientError:
        # What the figures met may be what every retry would meet again (the
        # snapshot lost while the source was away, seen by the figures as the
        # breaker's trial while the copy was held back): that error wins.
        (met,) = await asyncio.gather(figures, return_exceptions=True)
        if isinstance(met, Exception) and not isinstance(met, TransientError):
            raise met from None
        raise
    finally:
        # never cancelled: it may be the source's one breaker trial, which a
        # cancel would waste, and the copy's retry would meet the breaker again
        await asyncio.gather(figures, return_exceptions=True)
    if into.rowcount != rows:
        raise PhaseError(
            f"chunk {cp.slice} of {ctx.spec.source_table}: {into.rowcount} rows copied,"
            f" {rows} counted in the same snapshot"
        )
    result = {"rows": rows, "bytes": copied, "checksum": str(checksum)}
    tracing.note(rows=rows, bytes=copied)
    await checkpoints.chunk_done(conn, cp, ctx.worker_id, (cut.lo, cut.hi), result)
    return cp


async def _all_or_none(works: list[Coroutine[None, None, None]]) -> None:
    """Run `works` together; when one fails, the others stop (their chunk in
    flight rolls back) before the failure ends the phase."""
    jobs = [asyncio.ensure_future(w) for w in works]
    try:
        await asyncio.gather(*jobs)
    except BaseException:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        raise


async def _start_over(copy: _Copy, snapshot: Snapshot, lost: SnapshotLost) -> None:
    """Empty staging and plan again in `snapshot` (unless another run started
    over first), saying why."""
    ctx = copy.ctx
    why = f"{lost}: re-copying from the start in snapshot {snapshot.id}"

    async def reset(conn: Conn) -> bool:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"extract:{ctx.migration_id}",)
        )
        found = await checkpoints.load(conn, ctx.migration_id, PHASE)
        if found and snapshot_id(found[0].position) != lost.snapshot_id:
            return False  # another run started over already
        await checkpoints.drop_phase(conn, ctx.migration_id, PHASE)
        return await _plan(copy, snapshot, why, conn)

    if await ctx.target.transaction(reset):
        log.warning("%s extract: %s", ctx.migration_id, why)
        found = await ctx.target.autocommit(lambda c: checkpoints.load(c, ctx.migration_id, PHASE))
        ctx.progress(found)


async def _lock_plan(conn: Conn, migration_id: str) -> None:
    """One planning (or re-planning) of a migration's copy at a time."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"extract:{migration_id}",))

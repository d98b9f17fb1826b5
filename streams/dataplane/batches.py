"""The batch loop every copying phase shares: key-ordered batches, each one
committed with its checkpoint in one target transaction.

A phase splits its work into slices (key ranges; one unless it runs in
parallel); each slice advances batch by batch from its checkpoint's `after`
key up to its `hi` key. Between batches the run checks its stop signal; a
batch in flight when it is set is cancelled (streams.dataplane.inflight) and
rolls back with its checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial

from psycopg import sql

from streams.dataplane import catalog, checkpoints, metrics
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext, Stopped
from streams.dataplane.database import Conn
from streams.dataplane.errors import Interrupted, TransientError
from streams.dataplane.sql import next_batch

# (target connection, after, hi, size) -> (last key of the batch, rows in it)
Bounds = Callable[[Conn, str | None, str | None, int], Awaitable[tuple[str | None, int]]]
# (target connection, after, upto) -> None: write the batch's rows
Move = Callable[[Conn, str | None, str], Awaitable[None]]


def bounds_in(table: sql.Identifier, key: str) -> Bounds:
    """Batches of `table` by `key`, read in the target database itself."""

    async def bounds(
        conn: Conn, after: str | None, hi: str | None, size: int
    ) -> tuple[str | None, int]:
        return await catalog.batch_bounds(conn, next_batch(table, key, after, hi, size))

    return bounds


async def run_slices(ctx: PhaseContext, phase: str, bounds: Bounds, move: Move) -> Outcome:
    """Run every unfinished slice of `phase` (at most the spec's parallelism at
    once, and never more batches than the worker-wide limit)."""
    slices = await ctx.target.autocommit(
        lambda conn: checkpoints.load(conn, ctx.migration_id, phase)
    )
    by_slice = {cp.slice: cp for cp in slices}
    gate = asyncio.Semaphore(max(1, ctx.spec.parallelism))

    async def one(cp: Checkpoint) -> None:
        async with gate:
            await _run_slice(ctx, cp, by_slice, bounds, move)

    await _all_or_none([one(cp) for cp in slices if not cp.done])
    final = list(by_slice.values())
    if all(cp.done for cp in final):
        return Finished(sum(cp.rows_done for cp in final))
    return Stopped(final[0].text() if len(final) == 1 else None)


async def _all_or_none(works: list[Coroutine[None, None, None]]) -> None:
    """Run `works` together; when one fails, the others stop (their batch in
    flight rolls back) before the failure ends the phase."""
    jobs = [asyncio.ensure_future(w) for w in works]
    try:
        await asyncio.gather(*jobs)
    except BaseException:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        raise


async def _run_slice(
    ctx: PhaseContext, cp: Checkpoint, by_slice: dict[int, Checkpoint], bounds: Bounds, move: Move
) -> None:
    while not cp.done and not ctx.stop.is_set():
        before = cp.rows_done
        async with ctx.limiter.slot():
            work = partial(_batch, ctx, phase=cp.phase, slice_=cp.slice, bounds=bounds, move=move)
            try:
                cp = await ctx.target.transaction(work)
            except (TransientError, Interrupted):
                if ctx.stop.is_set():  # asked to stop while a database was away or mid-batch
                    break
                raise
        if cp.rows_done > before:
            metrics.ROWS.labels(cp.phase).inc(cp.rows_done - before)
            metrics.BATCHES.labels(cp.phase).inc()
        by_slice[cp.slice] = cp
        ctx.progress(sorted(by_slice.values(), key=lambda c: c.slice))


async def _batch(
    ctx: PhaseContext, conn: Conn, phase: str, slice_: int, bounds: Bounds, move: Move
) -> Checkpoint:
    cp = await checkpoints.lock_slice(conn, ctx.migration_id, phase, slice_)
    if cp is None:
        raise RuntimeError(f"checkpoint of {phase} slice {slice_} vanished")
    if cp.done:
        return cp
    after, hi = cp.position.get("after"), cp.position.get("hi")
    size = ctx.spec.batch_size
    upto, rows = await bounds(conn, after, hi, size)
    if rows and upto is not None:
        await move(conn, after, upto)
        await checkpoints.advance(conn, cp, rows, ctx.worker_id, after=upto)
    if rows < size:
        await checkpoints.finish(conn, cp, {"rows": cp.rows_done})
    return cp

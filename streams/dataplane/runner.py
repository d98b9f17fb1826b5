"""Run one phase task: pick the phase, resume from its checkpoint, and turn
the outcome into a phase result. Cancel cleans up per the staging policy.
A run asked to stop has its statements in flight cancelled on the server
(streams.dataplane.inflight): it ends within seconds, halted, not failed.

Staging policy: the staging tables of a migration live until it completes
(reconcile drops them with its result) or is cancelled (dropped here, and the
migration marked cancelled so a late task for it does nothing). While a
migration is paused or failed they stay, so it resumes from its checkpoint.
Rows already loaded into the target stay in every case.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from domain import (
    CancelPhase,
    PhaseErrored,
    PhaseHalted,
    PhaseResult,
    PhaseSucceeded,
    RunPhase,
    answer_fields,
)
from domain.errors import MigratorError
from domain.live import ErrorKind
from domain.text import storable
from streams.dataplane import (
    checkpoints,
    diff,
    extract,
    load,
    metrics,
    reconcile,
    repair,
    transform,
    validate,
)
from streams.dataplane.cdc import captures, cleanup, cutover, positions, sync
from streams.dataplane.context import Finished, Outcome, PhaseContext, Stopped
from streams.dataplane.database import Conn, Database
from streams.dataplane.errors import Interrupted, SchemaDrifted, TransientError
from streams.dataplane.failures import first_line
from streams.dataplane.inflight import cancelling_on
from streams.dataplane.retry import stopping_on

log = logging.getLogger(__name__)
PHASES: dict[str, Callable[[PhaseContext], Awaitable[Outcome]]] = {
    "extract": extract.run,
    "transform": transform.run,
    "validate": validate.run,
    "load": load.run,
    "reconcile": reconcile.run,
    "sync": sync.run,
    "cutover": cutover.run,
    "diff": diff.run,
    "repair": repair.run,
}
# Phases that run again whenever asked: each diffs the target as it is then.
RERUN = frozenset({"diff", "repair"})


async def prepare(target: Database) -> None:
    if not target.prepared:
        await target.autocommit(checkpoints.prepare)
        await target.autocommit(positions.prepare)
        target.prepared = True


async def finished_before(ctx: PhaseContext) -> Finished | None:
    """The phase's result when an earlier run of it already finished."""
    slices = await ctx.target.autocommit(
        lambda c: checkpoints.load(c, ctx.migration_id, ctx.task.phase)
    )
    if not slices or not all(cp.done for cp in slices):
        return None
    rows = sum(int((cp.result or {}).get("rows", cp.rows_done)) for cp in slices)
    return Finished(rows, (slices[0].result or {}).get("score"))


async def run(ctx: PhaseContext) -> Outcome:
    """The phase's outcome; a PhaseError (or a database error) when it fails."""
    await prepare(ctx.target)
    if await ctx.target.autocommit(lambda c: checkpoints.is_cancelled(c, ctx.migration_id)):
        return Stopped(None)
    if ctx.task.phase in RERUN:
        return await PHASES[ctx.task.phase](ctx)
    return await finished_before(ctx) or await PHASES[ctx.task.phase](ctx)


async def result_of(ctx: PhaseContext, paused: Callable[[], bool]) -> PhaseResult | None:
    """Run the phase and say how it ended (None: stopped for another reason
    than a pause — superseded, revoked, shutting down)."""
    task, started = ctx.task, time.monotonic()
    answers = answer_fields(task)
    try:
        with stopping_on(ctx.stop):
            async with cancelling_on(ctx.stop):
                outcome = await run(ctx)
    except Exception as exc:  # every failure ends the phase with its reason
        if not (isinstance(exc, TransientError | Interrupted) and ctx.stop.is_set()):
            return _failed(task, exc)
        outcome = Stopped(None)  # asked to stop while a database was away or a statement ran
    finally:
        metrics.DURATION.labels(task.phase).observe(time.monotonic() - started)
    if isinstance(outcome, Finished):
        metrics.PHASES.labels(task.phase, "succeeded").inc()
        return PhaseSucceeded(
            result_id=f"{task.task_id}:done",
            **answers,
            rows_done=outcome.rows_done,
            score=outcome.score,
            cutover=outcome.cutover,
        )
    metrics.PHASES.labels(task.phase, "stopped").inc()
    if paused():
        return PhaseHalted(
            result_id=f"{task.task_id}:halted", **answers, checkpoint=outcome.checkpoint
        )
    return None


def _failed(task: RunPhase, exc: Exception) -> PhaseErrored:
    # a message may quote what it met (a value, a server's text): the result
    # must still be decodable and storable, or the phase would never end
    reason = storable(str(exc) if isinstance(exc, MigratorError) else first_line(exc))
    log.warning("%s %s run %d failed: %s", task.migration_id, task.phase, task.run, reason)
    metrics.PHASES.labels(task.phase, "failed").inc()
    kind = ErrorKind.SCHEMA_DRIFTED.value if isinstance(exc, SchemaDrifted) else None
    return PhaseErrored(
        result_id=f"{task.task_id}:error", **answer_fields(task), reason=reason, kind=kind
    )


async def cancel(task: CancelPhase, target: Database, source: Database | None = None) -> None:
    """Drop the migration's staging and mark it cancelled, in one transaction;
    with change capture, drop its replication slot and unfreeze its source."""
    await prepare(target)

    async def clean(conn: Conn) -> None:
        await checkpoints.mark_cancelled(conn, task.migration_id)
        await reconcile.drop_staging(conn, task.migration_id)

    await target.transaction(clean)
    if source is not None and task.spec is not None and captures(task.spec):
        await cleanup(source, task.migration_id, task.spec)

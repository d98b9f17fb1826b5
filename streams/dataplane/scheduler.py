"""One run at a time per migration, on this worker.

Tasks of a migration arrive in order (one partition). A RunPhase starts a
run; a newer run of the same migration first stops the older one and waits
for it. PausePhase stops the run and answers PhaseHalted; CancelPhase stops
it and cleans up. When a partition is revoked or the worker shuts down, its
runs stop without an answer and their tasks stay uncommitted: the next owner
resumes them from their checkpoints. A run stops between batches, or sooner:
its statements in flight are cancelled on the server (the batch rolls back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from domain import (
    CancelPhase,
    PausePhase,
    PhaseErrored,
    PhaseHalted,
    PhaseProgressed,
    PhaseResult,
    PhaseSucceeded,
    PhaseTask,
    RunPhase,
    StopReason,
    answer_fields,
    errors,
)
from domain.spec import parse_spec_parts
from streams.dataplane import metrics, runner
from streams.dataplane.context import Limiter, PhaseContext, Progress
from streams.dataplane.database import Databases
from streams.dataplane.errors import PhaseError, SpecError

log = logging.getLogger(__name__)
Send = Callable[[PhaseResult], Awaitable[None]]
Done = Callable[[], None]
SILENT = frozenset({StopReason.REVOKED, StopReason.SHUTDOWN})


@dataclass
class Run:
    task: RunPhase
    partition: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    why: StopReason | None = None
    job: asyncio.Task[None] | None = None
    last: Progress | None = None

    def request_stop(self, why: StopReason) -> None:
        if not self.stop.is_set():
            self.why = why
            self.stop.set()


class Scheduler:
    def __init__(
        self,
        databases: Databases,
        limiter: Limiter,
        send: Send,
        worker_id: str,
        progress_interval: float = 0.5,
    ) -> None:
        self.databases, self.limiter, self.send = databases, limiter, send
        self.worker_id, self.progress_interval = worker_id, progress_interval
        self.active: dict[str, Run] = {}
        self.jobs: set[asyncio.Task[None]] = set()

    def handle(self, task: PhaseTask, partition: int, done: Done) -> None:
        """Act on one task; `done()` is called once its offset may be committed."""
        if isinstance(task, RunPhase):
            self._start(task, partition, done)
        elif isinstance(task, PausePhase):
            self._pause(task, done)
        else:
            self._cancel(task, done)

    def _start(self, task: RunPhase, partition: int, done: Done) -> None:
        before = self.active.get(task.migration_id)
        if before is not None and before.task.run >= task.run:
            done()  # a stale or repeated task: the newer run is in hand
            return
        if before is not None:
            before.request_stop(StopReason.SUPERSEDED)
        run = Run(task, partition)
        self.active[task.migration_id] = run
        run.job = self._spawn(self._run(run, before, done))

    def _pause(self, task: PausePhase, done: Done) -> None:
        run = self.active.get(task.migration_id)
        if run is not None and run.task.run == task.run:
            run.request_stop(StopReason.PAUSE)
            done()
            return
        # No such run here: it ended already, so the answer is stale or moot,
        # but an answer never leaves a migration PAUSING.
        halted = PhaseHalted(result_id=f"{task.task_id}:halted", **answer_fields(task))
        self._spawn(self._answer(halted, done))

    def _cancel(self, task: CancelPhase, done: Done) -> None:
        run = self.active.get(task.migration_id)
        if run is not None:
            run.request_stop(StopReason.CANCEL)
        self._spawn(self._clean(task, run, done))

    async def _run(self, run: Run, before: Run | None, done: Done) -> None:
        task = run.task
        try:
            if before is not None and before.job is not None:
                await asyncio.wait({before.job})
            result = await self._outcome(run)
            if result is not None:
                await self.send(result)
            if run.why not in SILENT:
                done()
        finally:
            if self.active.get(task.migration_id) is run:
                del self.active[task.migration_id]

    async def _outcome(self, run: Run) -> PhaseResult | None:
        task = run.task
        try:
            ctx = await self._context(run)
        except PhaseError as exc:
            return PhaseErrored(
                result_id=f"{task.task_id}:error", **answer_fields(task), reason=str(exc)
            )
        if run.stop.is_set() and run.why is not StopReason.PAUSE:
            return None
        metrics.ACTIVE_RUNS.inc()
        try:
            result = await runner.result_of(ctx, lambda: run.why is StopReason.PAUSE)
        finally:
            metrics.ACTIVE_RUNS.dec()
        if isinstance(result, PhaseErrored) and run.last is not None:
            result = replace(result, checkpoint=run.last.checkpoint)
        if isinstance(result, PhaseHalted) and result.checkpoint is None and run.last is not None:
            result = replace(result, checkpoint=run.last.checkpoint)  # stopped mid-statement
        if isinstance(result, PhaseSucceeded) and run.last is not None:
            # what the run's last progress counted: the bytes and the snapshot
            result = replace(result, bytes_done=run.last.bytes_done, snapshot=run.last.snapshot)
        return result

    async def _context(self, run: Run) -> PhaseContext:
        task = run.task
        try:
            mapping, rules = parse_spec_parts(task.spec.mapping, task.spec.rules)
        except errors.SpecError as exc:
            raise SpecError(f"invalid spec: {exc}") from None
        source = await self.databases.get(task.spec.source_connection)
        target = await self.databases.get(task.spec.target_connection)
        return PhaseContext(
            task,
            source,
            target,
            mapping,
            rules,
            self.limiter,
            self.worker_id,
            report=self._reporter(run),
            stop=run.stop,
        )

    def _reporter(self, run: Run) -> Callable[[Progress], None]:
        last_sent = [0.0]
        loop = asyncio.get_running_loop()

        def report(progress: Progress) -> None:
            run.last = progress
            now = loop.time()
            if (
                now - last_sent[0] < self.progress_interval
                and progress.rows_done < progress.rows_total
            ):
                return
            last_sent[0] = now
            task = run.task
            result = PhaseProgressed(
                result_id=f"{task.task_id}:p:{progress.rows_done}",
                **answer_fields(task),
                rows_done=progress.rows_done,
                rows_total=progress.rows_total,
                checkpoint=progress.checkpoint,
                bytes_done=progress.bytes_done,
                snapshot=progress.snapshot,
            )
            self._spawn(self.send(result))

        return report

    async def _answer(self, result: PhaseResult, done: Done) -> None:
        await self.send(result)
        done()

    async def _clean(self, task: CancelPhase, run: Run | None, done: Done) -> None:
        if run is not None and run.job is not None:
            await asyncio.wait({run.job})
        spec = task.spec or (run.task.spec if run else None)
        if spec is not None:
            try:
                await runner.cancel(task, await self.databases.get(spec.target_connection))
            except Exception as exc:  # cleanup is best effort; say so
                log.error("cleanup of cancelled migration %s failed: %s", task.migration_id, exc)
        done()

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        job = asyncio.ensure_future(work)
        self.jobs.add(job)
        job.add_done_callback(self._reap)
        return job

    def _reap(self, job: asyncio.Task[None]) -> None:
        self.jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.error("phase job failed", exc_info=job.exception())

    async def stop_partitions(self, partitions: set[int], why: StopReason) -> None:
        """Stop the runs of `partitions` between batches and wait for them."""
        runs = [r for r in self.active.values() if r.partition in partitions]
        for run in runs:
            run.request_stop(why)
        jobs = {r.job for r in runs if r.job is not None}
        if jobs:
            await asyncio.wait(jobs)

    async def shutdown(self) -> None:
        await self.stop_partitions({r.partition for r in self.active.values()}, StopReason.SHUTDOWN)
        if self.jobs:
            await asyncio.wait(set(self.jobs), timeout=30)

"""One owner's run (and at most one assist) at a time per migration, on
this worker.

Tasks of a migration arrive in order (one partition). A RunPhase starts a
run; a newer run of the same migration first stops the older one and waits
for it. PausePhase stops the run and answers PhaseHalted; CancelPhase stops
it and cleans up. When a partition is revoked or the worker shuts down, its
runs stop without an answer and their tasks stay uncommitted: the next owner
resumes them from their checkpoints. A run stops between batches, or sooner:
its statements in flight are cancelled on the server (the batch rolls back).

Assists spread one run's chunks over the group. The owner's run (of the task
the orchestrator wrote) calls `ctx.enlist()` once its chunks are planned; the
scheduler then broadcasts the same RunPhase, marked `assist`, to every other
partition of the topic. Whoever holds such a partition runs the same phase
with `ctx.assisting`: it claims unfinished chunks until none is left. An
assist never answers (only the owner reports progress and the outcome); its
failure is logged and ends that assist alone. An assist is ignored where the
migration runs already (as owner, or as an assist of that run or a newer
one) or when its run is older than the latest seen here; a worker that has
as many runs as its batch limit (PHASE_CONCURRENCY) lets it pass, as help is
optional and more runs would only wait for connections. An owner's task that
reaches a worker assisting its migration starts beside the assist, which
goes on until no chunk is left (stopping it would cut a chunk short). A
pause or cancel of a run that enlisted is broadcast the same way, after its
assists, so assists stop on the paths every run stops on; a revoked
partition or a shutdown stops the assists it carries, silently, and the
partition's next holder takes them up.

The mark is a field of the task (`assist`, an Avro field with a default),
not a Kafka header: it decides whether the receiver may answer, so it is
part of what the task says, decoded, checked and kept with it (JSON form,
golden records, a dead letter's bytes) like every other field, and a copy
of the value alone can never turn an assist into an owner's run.
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
from streams.dataplane.cdc import captures
from streams.dataplane.context import Limiter, PhaseContext, Progress, unanswered
from streams.dataplane.database import Databases
from streams.dataplane.errors import PhaseError, SpecError
from streams.kafka.tracing import within

log = logging.getLogger(__name__)
Send = Callable[[PhaseResult], Awaitable[None]]
# Sends a task to every partition of the phase-tasks topic but the given one.
Broadcast = Callable[[PhaseTask, int], Awaitable[None]]
Done = Callable[[], None]
SILENT = frozenset({StopReason.REVOKED, StopReason.SHUTDOWN})
REMEMBERED = 100_000  # migrations whose latest run number is kept


@dataclass
class Run:
    task: RunPhase
    partition: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    why: StopReason | None = None
    job: asyncio.Task[None] | None = None
    last: Progress | None = None
    enlisting: asyncio.Task[None] | None = None  # broadcasting the run to the group

    @property
    def assist(self) -> bool:
        return self.task.assist

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
        broadcast: Broadcast,
        worker_id: str,
        progress_interval: float = 0.5,
    ) -> None:
        self.databases, self.limiter, self.send = databases, limiter, send
        self.broadcast = broadcast
        self.worker_id, self.progress_interval = worker_id, progress_interval
        self.active: dict[str, Run] = {}  # the owners' runs
        self.assists: dict[str, Run] = {}
        self.latest: dict[str, int] = {}  # the newest run seen, per migration
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
        mid = task.migration_id
        owner, assist = self.active.get(mid), self.assists.get(mid)
        latest = self.latest.get(mid, 0)
        if not admits(task, _task(owner), _task(assist), latest):
            done()  # a stale or repeated task: the newer run is in hand
            return
        self._remember(mid, max(task.run, latest))
        if task.assist and len(self.active) + len(self.assists) >= self.limiter.limit:
            log.info("%s: busy with %d runs, not assisting", mid, len(self.active))
            done()  # help is optional: the owner copies what no one else takes
            return
        before = assist if task.assist else owner
        if before is not None:
            before.request_stop(StopReason.SUPERSEDED)
        run = Run(task, partition)
        self._runs(run)[mid] = run
        work = self._run(run, before, done)
        traced = within(f"phase {task.phase}", work, {"migration.id": mid, "run": task.run})
        run.job = self._spawn(traced)

    def _runs(self, run: Run) -> dict[str, Run]:
        return self.assists if run.assist else self.active

    def _remember(self, migration_id: str, run: int) -> None:
        self.latest.pop(migration_id, None)
        self.latest[migration_id] = run
        if len(self.latest) > REMEMBERED:
            del self.latest[next(iter(self.latest))]  # the one seen longest ago

    def _pause(self, task: PausePhase, done: Done) -> None:
        owner = _of_run(self.active.get(task.migration_id), task.run)
        assist = _of_run(self.assists.get(task.migration_id), task.run)
        if assist is not None:
            assist.request_stop(StopReason.PAUSE)
        if task.assist:
            done()  # an assist's pause stops assists only, and never answers
        elif owner is not None:
            owner.request_stop(StopReason.PAUSE)
            self._spawn(_then(self._pass_on(owner, task), done))  # the run answers as it halts
        else:
            # No run of the owner's here: it ended already, so the answer is
            # stale or moot, but an answer never leaves a migration PAUSING.
            halted = PhaseHalted(result_id=f"{task.task_id}:halted", **answer_fields(task))
            self._spawn(_then(self.send(halted), done))

    def _cancel(self, task: CancelPhase, done: Done) -> None:
        assist = self.assists.get(task.migration_id)
        if assist is not None:
            assist.request_stop(StopReason.CANCEL)
        if task.assist:
            done()  # an assist's cancel stops assists only: the owner cleans up
            return
        owner = self.active.get(task.migration_id)
        if owner is not None:
            owner.request_stop(StopReason.CANCEL)
        self._spawn(self._clean(task, owner, assist, done))

    async def _run(self, run: Run, before: Run | None, done: Done) -> None:
        task = run.task
        try:
            if before is not None and before.job is not None:
                await asyncio.wait({before.job})
            result = await self._outcome(run)
            if run.assist:
                _log_assist_failure(task, result)
            elif result is not None:
                await self.send(result)
            if run.why not in SILENT:
                done()
        finally:
            if self._runs(run).get(task.migration_id) is run:
                del self._runs(run)[task.migration_id]

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
            report=_ignore if run.assist else self._reporter(run),
            stop=run.stop,
            assisting=run.assist,
            enlist=lambda: self._enlist(run),
            answer=unanswered if run.assist else self.send,
        )

    async def _enlist(self, run: Run) -> None:
        """Broadcast an owner's run, once, to the group's other members (in the
        background: the run goes on meanwhile)."""
        if not run.assist and run.enlisting is None and not run.stop.is_set():
            run.enlisting = self._spawn(
                self._broadcast(replace(run.task, assist=True), run.partition)
            )

    async def _pass_on(self, run: Run, task: PausePhase | CancelPhase) -> None:
        """Broadcast a pause or cancel of a run that enlisted, after its assists."""
        if run.enlisting is not None:
            await asyncio.wait({run.enlisting})
            await self._broadcast(replace(task, assist=True), run.partition)

    async def _broadcast(self, task: PhaseTask, partition: int) -> None:
        try:
            await self.broadcast(task, partition)
        except Exception as exc:  # assists only speed a run up; it goes on alone
            log.warning("%s: broadcasting %s failed: %s", task.migration_id, task.type, exc)

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
                result_id=f"{task.task_id}:p:{progress.rows_done}{_lag_mark(progress)}",
                **answer_fields(task),
                rows_done=progress.rows_done,
                rows_total=progress.rows_total,
                checkpoint=progress.checkpoint,
                bytes_done=progress.bytes_done,
                snapshot=progress.snapshot,
                lag_bytes=progress.lag_bytes,
                lag_seconds=progress.lag_seconds,
                position=progress.position,
            )
            self._spawn(self.send(result))

        return report

    async def _clean(
        self, task: CancelPhase, run: Run | None, assist: Run | None, done: Done
    ) -> None:
        if run is not None:
            await self._pass_on(run, task)
        jobs = {r.job for r in (run, assist) if r is not None and r.job is not None}
        if jobs:
            await asyncio.wait(jobs)
        spec = task.spec or (run.task.spec if run else None)
        if spec is not None:
            try:
                source = (
                    await self.databases.get(spec.source_connection) if captures(spec) else None
                )
                await runner.cancel(
                    replace(task, spec=spec),
                    await self.databases.get(spec.target_connection),
                    source,
                )
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
        runs = [r for r in self._all() if r.partition in partitions]
        for run in runs:
            run.request_stop(why)
        jobs = {r.job for r in runs if r.job is not None}
        if jobs:
            await asyncio.wait(jobs)

    def _all(self) -> list[Run]:
        return [*self.active.values(), *self.assists.values()]

    async def shutdown(self) -> None:
        await self.stop_partitions({r.partition for r in self._all()}, StopReason.SHUTDOWN)
        if self.jobs:
            await asyncio.wait(set(self.jobs), timeout=30)


def admits(task: RunPhase, owner: RunPhase | None, assist: RunPhase | None, latest: int) -> bool:
    """Whether `task` starts a run here, given the tasks of the migration's
    runs here (the owner's, an assist) and the newest run of it seen. An
    owner's task replaces an older owner's run (an assist goes on beside it);
    an assist starts where the owner's run is not, replacing an older assist,
    unless its run is older than one seen."""
    if not task.assist:
        return owner is None or owner.run < task.run
    newer = assist is None or assist.run < task.run
    return owner is None and newer and task.run >= latest


def _task(run: Run | None) -> RunPhase | None:
    return run.task if run is not None else None


def _of_run(run: Run | None, number: int) -> Run | None:
    return run if run is not None and run.task.run == number else None


async def _then(work: Awaitable[None], done: Done) -> None:
    await work
    done()


def _lag_mark(progress: Progress) -> str:
    """Change capture reports its lag with the same count of rows: each new
    figure is a progress of its own (an id seen before would be dropped)."""
    if progress.position is None:
        return ""
    return f":{progress.position}:{progress.lag_bytes}:{progress.lag_seconds}"


def _ignore(progress: Progress) -> None:
    """An assist's progress: the owner reports the phase's."""


def _log_assist_failure(task: RunPhase, result: PhaseResult | None) -> None:
    if isinstance(result, PhaseErrored):
        log.warning(
            "%s %s: assist of run %d failed, ending it: %s",
            task.migration_id,
            task.phase,
            task.run,
            result.reason,
        )

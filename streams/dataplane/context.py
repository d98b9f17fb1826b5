"""What a phase run works with, and how it ends.

A run is the owner's (it answers for the phase) or an assist (`assisting`:
another member of the group enlisted it to copy chunks of the same run; it
never plans and never answers). The owner's run calls `enlist()` once its
work is planned, to bring the group's other members in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from domain import CutoverResult, MigrationSpec, PhaseResult, RunPhase, SnapshotRef
from domain.spec import ColumnMapping, Rule
from streams.dataplane import metrics
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.database import Database


class Limiter:
    """The worker-wide cap on batches in flight, shared by every phase run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        metrics.CONCURRENCY_LIMIT.set(limit)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            metrics.CONCURRENCY_IN_USE.inc()
            try:
                yield
            finally:
                metrics.CONCURRENCY_IN_USE.dec()


async def _alone() -> None:
    """No other member is asked to assist."""


async def unanswered(result: PhaseResult) -> None:
    """An assist never answers."""


@dataclass(frozen=True)
class Progress:
    """A phase's progress over all its slices: rows and bytes done (each
    slice's `position["bytes"]`), the checkpoint as text, and the snapshot
    the slices read the source in (extract's `position["snapshot"]`)."""

    rows_done: int
    rows_total: int
    checkpoint: str
    bytes_done: int = 0
    snapshot: SnapshotRef | None = None
    # change capture (sync, cutover): the slot's bytes behind the source's WAL,
    # the age in seconds of the oldest commit not applied (0: caught up), and
    # the LSN applied up to
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    position: str | None = None


@dataclass
class PhaseContext:
    """One run of one phase: the task, its databases, and how to report."""

    task: RunPhase
    source: Database
    target: Database
    mapping: ColumnMapping
    rules: tuple[Rule, ...]
    limiter: Limiter
    worker_id: str
    report: Callable[[Progress], None]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # an assistant copies chunks of another member's run and never answers
    assisting: bool = False
    # asks the group's other members to assist (once a chunked phase is planned)
    enlist: Callable[[], Awaitable[None]] = field(default=_alone)
    # sends a result besides the outcome (a diff), before it
    answer: Callable[[PhaseResult], Awaitable[None]] = field(default=unanswered)

    @property
    def spec(self) -> MigrationSpec:
        return self.task.spec

    @property
    def migration_id(self) -> str:
        return self.task.migration_id

    def progress(self, slices: list[Checkpoint]) -> None:
        self.report(progress_of(slices))


def progress_of(slices: list[Checkpoint]) -> Progress:
    """The phase's progress, summed over its slices."""
    text = slices[0].text() if len(slices) == 1 else _summary(slices)
    return Progress(
        rows_done=sum(cp.rows_done for cp in slices),
        rows_total=sum(cp.rows_total for cp in slices),
        checkpoint=text,
        bytes_done=sum(_bytes(cp) for cp in slices),
        snapshot=_snapshot(slices),
    )


def _bytes(cp: Checkpoint) -> int:
    return int(cp.position.get("bytes") or 0)


def _snapshot(slices: list[Checkpoint]) -> SnapshotRef | None:
    """The snapshot the first slice that names one reads in."""
    for cp in slices:
        named = cp.position.get("snapshot")
        if isinstance(named, dict):
            return SnapshotRef(id=named["id"], taken_at=named["taken_at"], lsn=named["lsn"])
    return None


def _summary(slices: list[Checkpoint]) -> str:
    """Many slices (chunks) in a few figures, the same size for ten or ten
    thousand: how many there are, done and in flight (started, not done),
    and their rows and bytes."""
    done = sum(1 for cp in slices if cp.done)
    started = sum(1 for cp in slices if not cp.done and (cp.batches or cp.rows_done))
    summary = {
        "chunks": len(slices),
        "done": done,
        "in_flight": started,
        "rows": sum(cp.rows_done for cp in slices),
        "bytes": sum(_bytes(cp) for cp in slices),
    }
    return json.dumps(summary, separators=(",", ":"))


@dataclass(frozen=True)
class Finished:
    rows_done: int
    score: float | None = None
    cutover: CutoverResult | None = None  # a cutover's result (PhaseSucceeded.cutover)


@dataclass(frozen=True)
class Stopped:
    """The run stopped between batches; `checkpoint` is where it resumes."""

    checkpoint: str | None


Outcome = Finished | Stopped

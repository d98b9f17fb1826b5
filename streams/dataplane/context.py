"""What a phase run works with, and how it ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from domain import MigrationSpec, RunPhase
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


@dataclass(frozen=True)
class Progress:
    rows_done: int
    rows_total: int
    checkpoint: str


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

    @property
    def spec(self) -> MigrationSpec:
        return self.task.spec

    @property
    def migration_id(self) -> str:
        return self.task.migration_id

    def progress(self, slices: list[Checkpoint]) -> None:
        done = sum(cp.rows_done for cp in slices)
        total = sum(cp.rows_total for cp in slices)
        text = slices[0].text() if len(slices) == 1 else _summary(slices)
        self.report(Progress(done, total, text))


def _summary(slices: list[Checkpoint]) -> str:
    return json.dumps(
        {
            "slices": [
                {"after": s.position.get("after"), "rows": s.rows_done, "done": s.done}
                for s in slices
            ]
        }
    )


@dataclass(frozen=True)
class Finished:
    rows_done: int
    score: float | None = None


@dataclass(frozen=True)
class Stopped:
    """The run stopped between batches; `checkpoint` is where it resumes."""

    checkpoint: str | None


Outcome = Finished | Stopped

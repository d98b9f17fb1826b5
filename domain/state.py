"""The state of one migration, as folded from its events, and the names it
is told in: phases, migration statuses and phase statuses (each a StrEnum,
so its value is the very string the records and the read model carry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from domain.commands import MigrationSpec


class Phase(StrEnum):
    """The phases every migration runs, in this order."""

    EXTRACT = "extract"
    TRANSFORM = "transform"
    VALIDATE = "validate"
    LOAD = "load"
    RECONCILE = "reconcile"


PHASES: tuple[Phase, ...] = tuple(Phase)


class Status(StrEnum):
    """A migration's status."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSING = "PAUSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({Status.COMPLETED, Status.CANCELLED})


class PhaseStatus(StrEnum):
    """A phase's status, as the read model keeps one row per phase."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class MigrationState:
    """`version` is the sequence of the last event folded in (0: none yet).

    `phase` is the current (or next, when paused between phases) phase; `run`
    counts the RunPhase tasks issued, so results of an older run are stale.
    `seen` holds every command id handled, `seen_results` the result ids of
    the current run (older runs' results are stale anyway). `finished_at` is
    when it completed or was cancelled (the event's time). `retired`: its
    state was dropped after the retention period (domain.retention); only
    its id and version are known, and every command for it is rejected.
    """

    migration_id: str
    status: Status = Status.PENDING
    version: int = 0
    spec: MigrationSpec | None = None
    phase: Phase | None = None
    run: int = 0
    checkpoint: str | None = None
    rows_done: int = 0
    rows_total: int = 0
    score: float | None = None
    reason: str | None = None
    phase_done: bool = False
    seen: frozenset[str] = field(default_factory=frozenset)
    seen_results: frozenset[str] = field(default_factory=frozenset)
    finished_at: str | None = None
    retired: bool = False

    @property
    def exists(self) -> bool:
        return self.spec is not None


def next_phase(phase: str) -> Phase | None:
    """The phase after `phase` (None after the last); ValueError if `phase`
    names none."""
    index = PHASES.index(Phase(phase)) + 1
    return PHASES[index] if index < len(PHASES) else None

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
    # Asked for after the load, by DiffMigration and RepairMigration; never in PHASES.
    DIFF = "diff"
    REPAIR = "repair"


PHASES: tuple[Phase, ...] = (
    Phase.EXTRACT,
    Phase.TRANSFORM,
    Phase.VALIDATE,
    Phase.LOAD,
    Phase.RECONCILE,
)
# The phases that compare (and repair) the loaded target: each ends the migration.
CHECKS = frozenset({Phase.DIFF, Phase.REPAIR})


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
    the current run (older runs' results are stale anyway).
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
    # keys the last row-level diff found differing (None: never diffed)
    differing: int | None = None
    seen: frozenset[str] = field(default_factory=frozenset)
    seen_results: frozenset[str] = field(default_factory=frozenset)

    @property
    def exists(self) -> bool:
        return self.spec is not None


def next_phase(phase: str) -> Phase | None:
    """The phase after `phase` (None after the last); ValueError if `phase`
    names none."""
    if Phase(phase) in CHECKS:
        return None
    index = PHASES.index(Phase(phase)) + 1
    return PHASES[index] if index < len(PHASES) else None

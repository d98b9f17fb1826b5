"""The state of one migration, as folded from its events, and the names it
is told in: phases, migration statuses and phase statuses (each a StrEnum,
so its value is the very string the records and the read model carry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from domain.commands import CutoverOptions, MigrationSpec


class Phase(StrEnum):
    """The phases every migration runs, in this order (PHASES), then, for a
    migration with `cdc` on, the two live phases (LIVE_PHASES): `sync`, which
    applies the source's changes until a cutover is asked for, and `cutover`,
    which replaces it. Neither live phase has a next phase."""

    EXTRACT = "extract"
    TRANSFORM = "transform"
    VALIDATE = "validate"
    LOAD = "load"
    RECONCILE = "reconcile"
    SYNC = "sync"
    CUTOVER = "cutover"
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
LIVE_PHASES: tuple[Phase, ...] = (Phase.SYNC, Phase.CUTOVER)
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
    SYNCING = "SYNCING"  # loaded and reconciled; a sync run applies the source's changes
    CUTTING_OVER = "CUTTING_OVER"  # a cutover run replaced the sync run


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
    `lag_bytes`, `lag_seconds` and `position` are what the last sync or
    cutover progress reported; `cutover` the options of the last cutover asked.
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
    # keys the last row-level diff found differing (None: never diffed)
    differing: int | None = None
    seen: frozenset[str] = field(default_factory=frozenset)
    seen_results: frozenset[str] = field(default_factory=frozenset)
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    position: str | None = None
    cutover: CutoverOptions | None = None
    finished_at: str | None = None
    retired: bool = False

    @property
    def exists(self) -> bool:
        return self.spec is not None


def next_phase(phase: str) -> Phase | None:
    """The phase after `phase` (None after the last, after a live phase and
    after a check); ValueError if `phase` names none."""
    named = Phase(phase)
    if named in LIVE_PHASES or named in CHECKS:
        return None
    index = PHASES.index(named) + 1
    return PHASES[index] if index < len(PHASES) else None


def phase_after(spec: MigrationSpec | None, phase: str) -> Phase | None:
    """The phase a migration runs after `phase`: the next one, or `sync`
    after the last for a migration with `cdc` on."""
    following = next_phase(phase)
    if following is None and spec is not None and spec.cdc and Phase(phase) is PHASES[-1]:
        return Phase.SYNC
    return following

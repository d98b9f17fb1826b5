"""Domain events: the source of truth, one gapless sequence per migration.

Every event is an `EventEnvelope` (event_id, migration_id, sequence,
occurred_at, causation_id, written once here) plus the payload its class
declares. Events are built by keyword; an event's `type` is its class name.
A phase event's `phase` is the name the orchestrator requested (a `Phase`
for every event this code writes; the records' field is a free string).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.commands import CutoverResult, DiffFigures, MigrationSpec, Named, SnapshotRef


@dataclass(frozen=True, kw_only=True)
class EventEnvelope(Named):
    """What every event carries: who it is, where it sits in its migration's
    sequence, when it happened and which input caused it."""

    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str


@dataclass(frozen=True, kw_only=True)
class MigrationStarted(EventEnvelope):
    spec: MigrationSpec


@dataclass(frozen=True, kw_only=True)
class PhaseRequested(EventEnvelope):
    phase: str
    run: int
    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseProgressRecorded(EventEnvelope):
    phase: str
    rows_done: int
    rows_total: int
    checkpoint: str | None = None
    bytes_done: int = 0
    snapshot: SnapshotRef | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    position: str | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseCompleted(EventEnvelope):
    phase: str
    rows_done: int
    score: float | None = None
    bytes_done: int = 0
    snapshot: SnapshotRef | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseFailed(EventEnvelope):
    phase: str
    reason: str
    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class MigrationPausing(EventEnvelope):
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class MigrationPaused(EventEnvelope):
    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class MigrationResumed(EventEnvelope):
    pass


@dataclass(frozen=True, kw_only=True)
class MigrationRetried(EventEnvelope):
    pass


@dataclass(frozen=True, kw_only=True)
class MigrationCompleted(EventEnvelope):
    pass


@dataclass(frozen=True, kw_only=True)
class MigrationFailed(EventEnvelope):
    reason: str


@dataclass(frozen=True, kw_only=True)
class MigrationCancelled(EventEnvelope):
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class CommandRejected(EventEnvelope):
    command_type: str
    reason: str


# Events of a live migration (domain.live).


@dataclass(frozen=True, kw_only=True)
class CutoverRequested(EventEnvelope):
    max_lag_bytes: int | None = None
    max_lag_seconds: float | None = None
    freeze: bool = False


@dataclass(frozen=True, kw_only=True)
class CutoverAborted(EventEnvelope):
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class CutoverCompleted(EventEnvelope):
    result: CutoverResult


@dataclass(frozen=True, kw_only=True)
class SchemaDrifted(EventEnvelope):
    """The source table changed shape during capture; `reason` names the change."""

    phase: str
    reason: str
    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class DiffRecorded(DiffFigures, EventEnvelope):
    """A row-level diff of the migration's source and target, as taken by `phase`."""

    phase: str = ""


# The events about one phase (they name it) and those about the migration.
PhaseEvent = PhaseRequested | PhaseProgressRecorded | PhaseCompleted | PhaseFailed
MigrationEvent = (
    MigrationStarted
    | MigrationPausing
    | MigrationPaused
    | MigrationResumed
    | MigrationRetried
    | MigrationCompleted
    | MigrationFailed
    | MigrationCancelled
    | CommandRejected
    | CutoverRequested
    | CutoverAborted
    | CutoverCompleted
    | SchemaDrifted
    | DiffRecorded
)
Event = PhaseEvent | MigrationEvent

"""Domain events: the source of truth, one gapless sequence per migration.

Every event carries the envelope (event_id, migration_id, sequence,
occurred_at, causation_id) and its payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.commands import MigrationSpec


@dataclass(frozen=True)
class MigrationStarted:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    spec: MigrationSpec
    type: str = "MigrationStarted"


@dataclass(frozen=True)
class PhaseRequested:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    phase: str
    run: int
    checkpoint: str | None = None
    type: str = "PhaseRequested"


@dataclass(frozen=True)
class PhaseProgressRecorded:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    phase: str
    rows_done: int
    rows_total: int
    checkpoint: str | None = None
    type: str = "PhaseProgressRecorded"


@dataclass(frozen=True)
class PhaseCompleted:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    phase: str
    rows_done: int
    score: float | None = None
    type: str = "PhaseCompleted"


@dataclass(frozen=True)
class PhaseFailed:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    phase: str
    reason: str
    checkpoint: str | None = None
    type: str = "PhaseFailed"


@dataclass(frozen=True)
class MigrationPausing:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    reason: str = ""
    type: str = "MigrationPausing"


@dataclass(frozen=True)
class MigrationPaused:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    checkpoint: str | None = None
    type: str = "MigrationPaused"


@dataclass(frozen=True)
class MigrationResumed:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    type: str = "MigrationResumed"


@dataclass(frozen=True)
class MigrationRetried:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    type: str = "MigrationRetried"


@dataclass(frozen=True)
class MigrationCompleted:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    type: str = "MigrationCompleted"


@dataclass(frozen=True)
class MigrationFailed:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    reason: str
    type: str = "MigrationFailed"


@dataclass(frozen=True)
class MigrationCancelled:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    reason: str = ""
    type: str = "MigrationCancelled"


@dataclass(frozen=True)
class CommandRejected:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    command_type: str
    reason: str
    type: str = "CommandRejected"


Event = (
    MigrationStarted
    | PhaseRequested
    | PhaseProgressRecorded
    | PhaseCompleted
    | PhaseFailed
    | MigrationPausing
    | MigrationPaused
    | MigrationResumed
    | MigrationRetried
    | MigrationCompleted
    | MigrationFailed
    | MigrationCancelled
    | CommandRejected
)

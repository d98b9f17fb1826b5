"""Domain events: the source of truth, one gapless sequence per migration."""

from __future__ import annotations

from dataclasses import dataclass

from streams.domain.commands import MigrationSpec


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
class CommandRejected:
    event_id: str
    migration_id: str
    sequence: int
    occurred_at: str
    causation_id: str
    command_type: str
    reason: str
    type: str = "CommandRejected"


Event = MigrationStarted | CommandRejected

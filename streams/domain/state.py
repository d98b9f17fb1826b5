"""The state of one migration, as folded from its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from streams.domain.commands import MigrationSpec


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSING = "PAUSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class MigrationState:
    """`version` is the sequence of the last event folded in (0: none yet)."""

    migration_id: str
    status: Status = Status.PENDING
    version: int = 0
    spec: MigrationSpec | None = None
    seen_commands: frozenset[str] = field(default_factory=frozenset)

    @property
    def exists(self) -> bool:
        return self.spec is not None

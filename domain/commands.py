"""Commands (what an operator asks) and phase results (what a phase worker
reports): the two kinds of input the orchestrator decides on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MigrationSpec:
    """What to copy where. Connections are names configured on the workers."""

    source_connection: str
    source_table: str
    source_key: str
    target_connection: str
    target_table: str
    mapping: Mapping[str, Any] = field(default_factory=dict)
    rules: tuple[Mapping[str, Any], ...] = ()
    min_score: float = 1.0
    batch_size: int = 1000
    parallelism: int = 1


@dataclass(frozen=True)
class StartMigration:
    command_id: str
    migration_id: str
    spec: MigrationSpec
    type: str = "StartMigration"


@dataclass(frozen=True)
class PauseMigration:
    command_id: str
    migration_id: str
    reason: str = ""
    type: str = "PauseMigration"


@dataclass(frozen=True)
class ResumeMigration:
    command_id: str
    migration_id: str
    type: str = "ResumeMigration"


@dataclass(frozen=True)
class CancelMigration:
    command_id: str
    migration_id: str
    reason: str = ""
    type: str = "CancelMigration"


@dataclass(frozen=True)
class RetryMigration:
    command_id: str
    migration_id: str
    type: str = "RetryMigration"


Command = StartMigration | PauseMigration | ResumeMigration | CancelMigration | RetryMigration


# Phase results. `run` echoes the RunPhase task they answer: a result of an
# earlier run (before a pause, a failure or a retry) is stale and ignored.


@dataclass(frozen=True)
class PhaseProgressed:
    result_id: str
    migration_id: str
    phase: str
    run: int
    rows_done: int
    rows_total: int
    checkpoint: str | None = None
    type: str = "PhaseProgressed"


@dataclass(frozen=True)
class PhaseSucceeded:
    result_id: str
    migration_id: str
    phase: str
    run: int
    rows_done: int
    score: float | None = None
    type: str = "PhaseSucceeded"


@dataclass(frozen=True)
class PhaseHalted:
    """The phase stopped after a pause request, at `checkpoint`."""

    result_id: str
    migration_id: str
    phase: str
    run: int
    checkpoint: str | None = None
    type: str = "PhaseHalted"


@dataclass(frozen=True)
class PhaseErrored:
    result_id: str
    migration_id: str
    phase: str
    run: int
    reason: str
    checkpoint: str | None = None
    type: str = "PhaseErrored"


PhaseResult = PhaseProgressed | PhaseSucceeded | PhaseHalted | PhaseErrored
Input = Command | PhaseResult

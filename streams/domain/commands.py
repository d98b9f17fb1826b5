"""Commands: what an operator asks of a migration."""

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


Command = StartMigration

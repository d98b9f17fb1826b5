"""Orchestrator workers and phase workers as processes, driven through Kafka
as an operator's tooling would: commands in, the event log read back
(read_committed) to see where each migration is."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from config import KafkaNames, Settings
from config.connections import Connection
from domain import (
    CancelMigration,
    Command,
    Event,
    MigrationSpec,
    PauseMigration,
    ResumeMigration,
    RetryMigration,
    StartMigration,
    replay,
)
from domain.state import MigrationState
from schemas import decode_event, encode
from streams.kafka.clients import producer_config
from streams.kafka.reader import read_committed
from tests.support.processes import Processes, eventually, group_is_stable


class DataPlane:
    def __init__(self, settings: Settings, names: KafkaNames, procs: Processes) -> None:
        self.settings, self.names, self.procs = settings, names, procs
        self.producer = Producer(producer_config(settings))

    def send(self, command: Command) -> None:
        value, headers = encode(command)
        self.producer.produce(
            self.names.commands, value, command.migration_id.encode(), headers=headers
        )
        self.producer.flush(30)

    def close(self) -> None:
        """Let the producer go (a failed test's traceback may keep this object)."""
        self.producer.close()

    def start(self, migration_id: str, spec: MigrationSpec) -> None:
        self.send(StartMigration(command_id=_id(), migration_id=migration_id, spec=spec))

    def pause(self, migration_id: str) -> None:
        self.send(PauseMigration(command_id=_id(), migration_id=migration_id, reason="test"))

    def resume(self, migration_id: str) -> None:
        self.send(ResumeMigration(command_id=_id(), migration_id=migration_id))

    def retry(self, migration_id: str) -> None:
        self.send(RetryMigration(command_id=_id(), migration_id=migration_id))

    def cancel(self, migration_id: str) -> None:
        self.send(CancelMigration(command_id=_id(), migration_id=migration_id, reason="test"))

    def events(self) -> dict[str, list[Event]]:
        by_migration: dict[str, list[Event]] = {}
        for record in read_committed(self.settings, self.names.events):
            event = decode_event(record.value, record.headers)
            by_migration.setdefault(event.migration_id, []).append(event)
        return by_migration

    def state(self, migration_id: str) -> MigrationState:
        return replay(migration_id, self.events().get(migration_id, []))

    def wait_for(self, migration_id: str, *statuses: str, timeout: float = 120) -> MigrationState:
        def reached() -> MigrationState | None:
            state = self.state(migration_id)
            return state if state.status.value in statuses else None

        return eventually(reached, timeout=timeout, every=0.5)  # type: ignore[no-any-return]


def connections_env(connections: dict[str, Connection]) -> dict[str, str]:
    plain = {
        name: {
            **c.model_dump(exclude_none=True, exclude={"password"}),
            **({"password": c.password.get_secret_value()} if c.password else {}),
        }
        for name, c in connections.items()
    }
    return {"PHASE_CONNECTIONS": json.dumps(plain, default=str)}


@contextmanager
def data_plane(
    settings: Settings,
    names: KafkaNames,
    logs: Path,
    connections: dict[str, Connection],
    phase_workers: int = 1,
    phase_env: dict[str, str] | None = None,
) -> Iterator[DataPlane]:
    """One orchestrator worker and `phase_workers` phase workers; all must
    exit 0 on SIGTERM at the end (a test may kill and restart them)."""
    procs = Processes(settings, logs)
    env = {**connections_env(connections), **(phase_env or {})}
    try:
        procs.start("worker")
        for i in range(phase_workers):
            procs.start(f"phase-{i}", "phase-worker", {**env, "PHASE_WORKER_ID": f"phase-{i}"})
        eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
        eventually(
            lambda: group_is_stable(settings.kafka.bootstrap_servers, names.phase_worker_group)
        )
        yield DataPlane(settings, names, procs)
    except BaseException:
        procs.stop_all()
        raise
    codes = procs.stop_all()
    assert set(codes.values()) == {0}, {n: procs.log(n)[-3000:] for n in codes}


def _id() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


def spec(**fields: Any) -> MigrationSpec:
    base: dict[str, Any] = {
        "source_connection": "legacy",
        "source_table": "customers",
        "source_key": "id",
        "target_connection": "warehouse",
        "target_table": "customers",
    }
    return MigrationSpec(**{**base, **fields})

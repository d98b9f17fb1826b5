"""A finished migration's state is retired after the retention period, on the
real broker: its changelog key gets a tombstone, a later command for it (even
its own old command id again) is rejected as retired with the next sequence,
and a worker restarted afterwards loads no state for it, only its retired id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from config import KafkaNames, Settings
from domain import (
    CancelMigration,
    Command,
    CommandRejected,
    Event,
    MigrationCancelled,
    MigrationSpec,
    PauseMigration,
    StartMigration,
)
from schemas import decode_event, encode
from streams.kafka.clients import producer_config
from streams.kafka.partitions import home_partition
from streams.kafka.reader import read_committed
from streams.orchestrator.loop import OrchestratorLoop
from streams.orchestrator.retired import is_retired_key
from streams.orchestrator.state_store import load_changelog
from tests.support.processes import eventually

pytestmark = pytest.mark.integration

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)
RETENTION = 1.0  # seconds


@contextmanager
def worker(settings: Settings) -> Iterator[OrchestratorLoop]:
    loop = OrchestratorLoop(settings, threading.Event())
    failed: list[BaseException] = []

    def run() -> None:
        try:
            loop.run()
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.stop.set()
        thread.join(60)
    assert not thread.is_alive(), "the worker did not stop"
    assert not failed, failed


def active_gauge() -> float | None:
    return REGISTRY.get_sample_value("migrator_active_migrations")


def send(settings: Settings, names: KafkaNames, command: Command) -> None:
    producer = Producer(producer_config(settings))
    value, headers = encode(command)
    producer.produce(names.commands, value, command.migration_id.encode(), headers=headers)
    assert producer.flush(30) == 0


def events_of(settings: Settings, names: KafkaNames, migration_id: str) -> list[Event]:
    found = [decode_event(r.value, r.headers) for r in read_committed(settings, names.events)]
    return [e for e in found if e.migration_id == migration_id]


def changelog(settings: Settings, names: KafkaNames, partition: int) -> list[tuple[bytes, bool]]:
    """(key, is a tombstone) of each committed changelog record, in order."""
    return [
        (r.key or b"", r.value is None)
        for r in read_committed(settings, names.state_changelog, {partition})
    ]


def test_a_retired_migration_is_tombstoned_rejected_and_not_loaded_again(
    settings: Settings, topics: KafkaNames, unique: str
) -> None:
    mine = settings.replace(worker={"state_retention_seconds": RETENTION})
    mid, key = f"m-{unique}", f"m-{unique}".encode()
    partition = home_partition(key, mine.kafka.topic_partitions)
    start = StartMigration(command_id=f"c-start-{unique}", migration_id=mid, spec=SPEC)

    with worker(mine):
        send(mine, topics, start)
        eventually(lambda: events_of(mine, topics, mid))
        eventually(lambda: active_gauge() == 1)  # set by the batch itself, no later input
        send(mine, topics, CancelMigration(command_id=f"c-cancel-{unique}", migration_id=mid))
        eventually(
            lambda: any(isinstance(e, MigrationCancelled) for e in events_of(mine, topics, mid))
        )
        # Retired: the last changelog record of its key is a tombstone.
        eventually(
            lambda: (
                [tomb for k, tomb in changelog(mine, topics, partition) if k == key][-1:] == [True]
            )
        )
        version = len(events_of(mine, topics, mid))
        send(mine, topics, PauseMigration(command_id=f"c-pause-{unique}", migration_id=mid))
        rejected = eventually(lambda: events_of(mine, topics, mid)[version:])
        assert active_gauge() == 0

    assert isinstance(rejected[0], CommandRejected)
    assert rejected[0].sequence == version + 1  # the log stays gapless
    assert rejected[0].command_type == "PauseMigration"
    assert "retired" in rejected[0].reason
    records = changelog(mine, topics, partition)
    assert [tomb for k, tomb in records if k == key][-1] is True
    assert any(is_retired_key(k) for k, _ in records)

    # A restarted worker loads no state for it, only its retired id and version.
    loaded = load_changelog(mine, topics.state_changelog, {partition})[partition]
    assert mid not in loaded.states
    assert loaded.retired.version(mid) == version + 1

    # ... and rejects a repeated old command id as retired, at the next sequence.
    with worker(mine):
        send(mine, topics, start)
        again = eventually(lambda: events_of(mine, topics, mid)[version + 1 :])
    assert isinstance(again[0], CommandRejected)
    assert again[0].sequence == version + 2
    assert again[0].causation_id == start.command_id
    assert "retired" in again[0].reason
    assert all(not isinstance(e, MigrationCancelled) for e in again)

"""Commands written away from their migration's partition (another client's
partitioner, an explicit partition, no key at all) are decided on the
migration's own partition: one log, one sequence, one state."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from config import KafkaNames, Settings
from streams.kafka.partitions import home_partition
from streams.kafka.reader import read_committed
from tests.support.log_check import check_events, final_status
from tests.support.processes import Processes, eventually
from tests.support.system import SPEC, migration, running_system

pytestmark = pytest.mark.e2e


@pytest.fixture
def system(settings: Settings, topics: KafkaNames, tmp_path: Path) -> Iterator[Processes]:
    with running_system(settings, topics, tmp_path, simulator=True, phase_seconds=2.0) as procs:
        yield procs


def away(mid: str, partitions: int) -> int:
    return (home_partition(mid.encode(), partitions) + 1) % partitions


def test_commands_landing_on_foreign_partitions_are_decided_at_home(
    settings: Settings, topics: KafkaNames, system: Processes
) -> None:
    n = settings.kafka.topic_partitions
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    mids = [f"m-far-{i}" for i in range(6)]

    def send(command: dict[str, object], key: bytes | None, partition: int) -> None:
        producer.produce(topics.commands, json.dumps(command).encode(), key, partition)
        producer.flush(30)

    for i, mid in enumerate(mids):  # keyed by the migration, on the wrong partition
        start = {"type": "StartMigration", "command_id": f"s-{i}", "migration_id": mid}
        send({**start, "spec": SPEC}, mid.encode(), away(mid, n))
    for i, mid in enumerate(mids):  # unkeyed, on the wrong partition
        eventually(lambda m=mid: migration(settings, m).get("status") in ("RUNNING", "COMPLETED"))
        pause = {"type": "PauseMigration", "command_id": f"p-{i}", "migration_id": mid}
        send(pause, None, away(mid, n))
    for mid in mids:
        eventually(lambda m=mid: migration(settings, m).get("status") in ("PAUSED", "COMPLETED"))
    for i, mid in enumerate(mids):  # keyed otherwise, on the wrong partition
        resume = {"type": "ResumeMigration", "command_id": f"r-{i}", "migration_id": mid}
        send(resume, b"not-the-migration", away(mid, n))
    for mid in mids:
        eventually(lambda m=mid: migration(settings, m).get("status") == "COMPLETED", 180)

    report = check_events(read_committed(settings, topics.events))
    assert report.violations == []
    assert {mid: final_status(report, mid) for mid in mids} == dict.fromkeys(mids, "COMPLETED")
    for mid in mids:
        home = home_partition(mid.encode(), n)
        kept = {
            r.partition
            for r in read_committed(settings, topics.state_changelog)
            if r.key == mid.encode()
        }
        emitted = {
            r.partition for r in read_committed(settings, topics.events) if r.key == mid.encode()
        }
        assert kept == emitted == {home}, mid
    with urllib.request.urlopen(f"http://127.0.0.1:{system.metrics_port}/metrics") as resp:
        text = resp.read().decode()
    line = f'migrator_inputs_forwarded_total{{topic="{topics.commands}"}} '
    assert float(text.split(line, 1)[1].split()[0]) >= 3 * len(mids)

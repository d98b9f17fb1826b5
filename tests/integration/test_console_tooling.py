"""The README's "Kafka console tooling" commands, run as documented against a
real broker (only the topic prefix and the group id are the test's own), so
the documentation cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from config import KafkaNames, Settings
from streams.kafka.clients import consumer_config
from streams.kafka.topics import watermarks
from tests.support.processes import ROOT

pytestmark = pytest.mark.integration
TYPES = [
    "StartMigration",
    "PauseMigration",
    "ResumeMigration",
    "CancelMigration",
    "RetryMigration",
    "CutoverMigration",
    "AbortCutover",
]


def documented_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Kafka console tooling\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def as_for_test(block: str, names: KafkaNames) -> str:
    """The block with the test's topic prefix and orchestrator group."""
    block = block.replace("migration-orchestrator", names.orchestrator_group)
    return re.sub(r"\bmigration\.", names.prefix + "migration.", block)


def run(block: str, settings: Settings) -> str:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "KAFKA_APP_ID": settings.kafka.app_id,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer(consumer_config(settings, group))
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.kafka.topic_partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, 30)}
    finally:
        consumer.close()


def test_the_documented_console_commands_work_against_the_broker(
    settings: Settings, topics: KafkaNames
) -> None:
    publish, tail, consume, lag, reset = [as_for_test(b, topics) for b in documented_blocks()]

    run(publish, settings)
    ends = {p: high for p, (_, high) in watermarks(settings, topics.commands).items()}
    stopped_worker = Consumer(consumer_config(settings, topics.orchestrator_group))
    stopped_worker.commit(
        offsets=[TopicPartition(topics.commands, p, o) for p, o in ends.items()],
        asynchronous=False,
    )
    stopped_worker.close()
    tailed, consumed, described, reset_out = (run(b, settings) for b in (tail, consume, lag, reset))

    assert re.findall(r'"type": "(\w+)"', tailed) == TYPES
    assert [line.split("\t")[1] for line in consumed.splitlines()] == ["m-1"] * 5
    assert "LAG" in described and topics.commands in described
    assert "NEW-OFFSET" in reset_out
    assert set(committed(settings, topics.orchestrator_group, topics.commands).values()) == {0}

"""DLQ depth and consumer lag, computed from the real broker."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from config import KafkaNames, Settings
from streams.kafka.clients import consumer_config, producer_config
from streams.kafka.depth import DlqDepth
from streams.kafka.lag import LagTarget, consumer_lag
from tests.support.dead_letters import migrator, write_dead_letters
from tests.support.processes import Processes, eventually
from tests.support.stack import free_port

pytestmark = pytest.mark.integration


def _transaction(settings: Settings, topic: str, values: list[bytes], commit: bool) -> None:
    producer = Producer(producer_config(settings, **{"transactional.id": f"t-{topic}-{commit}"}))
    producer.init_transactions(30)
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, value, b"k")
    if commit:
        producer.commit_transaction(30)
    else:
        producer.flush(30)  # librdkafka#4849: an abort racing in-flight records is refused
        producer.abort_transaction(30)


def test_depth_counts_committed_records_only_and_follows_purges(
    settings: Settings, topics: KafkaNames
) -> None:
    dlq = topics.dlq(topics.commands)
    depth = DlqDepth(settings, (dlq, topics.dlq(topics.events)))
    write_dead_letters(settings, dlq, topics.commands, [b"a", b"b", b"c"])
    _transaction(settings, dlq, [b"d", b"e"], commit=True)
    _transaction(settings, dlq, [b"aborted"], commit=False)

    first = depth.refresh()
    write_dead_letters(settings, dlq, topics.commands, [b"f"])
    second = depth.refresh()
    migrator(settings, "dlq", "purge", dlq, "--all", "--yes")
    third = depth.refresh()

    assert first == {dlq: 5, topics.dlq(topics.events): 0}
    assert second[dlq] == 6
    assert third[dlq] == 0


def test_lag_is_the_distance_from_committed_offsets_to_the_end(
    settings: Settings, topics: KafkaNames
) -> None:
    producer = Producer(producer_config(settings))
    for i in range(10):
        producer.produce(topics.commands, b"x", b"k", partition=i % 2)
    producer.flush(30)
    group = f"{settings.kafka.app_id}-lag-test"
    consumer = Consumer(consumer_config(settings, group))
    consumer.commit(offsets=[TopicPartition(topics.commands, 0, 3)], asynchronous=False)
    consumer.close()

    lag = consumer_lag(settings, LagTarget(group, (topics.commands, topics.events)))

    assert lag == {topics.commands: (5 - 3) + 5, topics.events: 0}


def test_the_worker_serves_dlq_depth_and_consumer_lag(
    settings: Settings, topics: KafkaNames, tmp_path: Path
) -> None:
    port = free_port()
    procs = Processes(settings, tmp_path)
    procs.start(
        "worker",
        extra_env={"WORKER_METRICS_PORT": str(port), "OPS_METRICS_INTERVAL_SECONDS": "0.5"},
    )
    try:
        write_dead_letters(settings, topics.dlq(topics.commands), topics.commands, [b"a", b"b"])
        depth = f'migrator_dlq_depth{{topic="{topics.dlq(topics.commands)}"}} 2.0'
        lag = f'migrator_consumer_lag{{group="{settings.kafka.app_id}",topic="{topics.commands}"}}'
        eventually(lambda: depth in _scrape(port) and lag in _scrape(port))
    finally:
        assert procs.stop_all() == {"worker": 0}, procs.log("worker")[-3000:]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())

"""Topic metadata (partitions, watermarks, group offsets) and creation, for the
operator tools, the lag metric and the rebuild (confluent-kafka Admin)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.cimpl import NewTopic

from config import Settings
from config.names import TopicSpec
from streams.kafka.clients import admin as admin  # re-exported: the operator tools import it here
from streams.kafka.errors import NoSuchTopic
from streams.kafka.retrying import transient_retry

TIMEOUT = 30.0


def partition_count(settings: Settings, topic: str) -> int:
    """How many partitions `topic` has; NoSuchTopic when it does not exist."""
    metadata = transient_retry(lambda: admin(settings).list_topics(timeout=TIMEOUT))
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise NoSuchTopic(topic)
    return len(found.partitions)


def watermarks(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)}: the first retained offset and the committed end
    (the last stable offset: what a read_committed reader can reach)."""
    count = partition_count(settings, topic)
    low = offsets(settings, topic, count, OffsetSpec.earliest())
    high = offsets(settings, topic, count, OffsetSpec.latest())
    return {p: (low[p], high[p]) for p in range(count)}


def offsets(settings: Settings, topic: str, count: int, spec: OffsetSpec) -> dict[int, int]:
    asked = {TopicPartition(topic, p): spec for p in range(count)}

    def ask() -> dict[int, int]:
        client = admin(settings)  # kept alive until the futures are done
        futures = client.list_offsets(
            asked, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=TIMEOUT
        )
        return {tp.partition: f.result(TIMEOUT).offset for tp, f in futures.items()}

    return transient_retry(ask)


def create_topics(
    settings: Settings, specs: Iterable[TopicSpec], timeout: float = TIMEOUT
) -> dict[str, str]:
    """Create the missing topics of `specs`; {topic: 'created' | 'exists'}."""
    client = admin(settings)  # kept alive until the futures are done
    replicas = settings.kafka.topic_replication_factor or _cluster_replicas(client, timeout)
    new = [_new(s, replicas) for s in specs]
    futures = client.create_topics(new, request_timeout=timeout)
    return {topic: _created(future, timeout) for topic, future in futures.items()}


def ensure_topic(settings: Settings, spec: TopicSpec) -> None:
    """Create the topic of `spec` unless it exists, and wait until it is usable."""
    create_topics(settings, [spec])
    _wait_for_leaders(admin(settings), spec.name)


def _cluster_replicas(client: AdminClient, timeout: float) -> int:
    """One replica per broker, at most 3 (with min.insync.replicas=2 on a
    cluster, a topic then survives the loss of one broker)."""
    brokers = transient_retry(lambda: client.list_topics(timeout=timeout)).brokers
    return max(1, min(3, len(brokers)))


def _new(spec: TopicSpec, replicas: int) -> NewTopic:
    return NewTopic(
        spec.name,
        num_partitions=spec.partitions,
        replication_factor=replicas,
        config=dict(spec.config),
    )


def _created(future: Any, timeout: float) -> str:
    try:
        future.result(timeout)
    except KafkaException as exc:
        if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise
        return "exists"
    return "created"


def _wait_for_leaders(client: AdminClient, topic: str) -> None:
    """A topic just created is usable once every partition has a leader."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = client.list_topics(topic, timeout=TIMEOUT).topics.get(topic)
        if found and found.error is None and all(p.leader >= 0 for p in found.partitions.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic} has no leader after {TIMEOUT:g} s")

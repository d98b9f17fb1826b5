"""Consumer lag per group and topic: how far a group's committed offsets are
behind the topic's committed end (read_committed: the last stable offset).

Like `kafka-consumer-groups --describe`, it counts offsets, so a transaction's
commit marker counts as one: a partition whose last write was a transaction
shows a lag of 1 until something is written after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin._listoffsets import OffsetSpec

from config import KafkaNames, Settings
from streams.kafka.clients import admin
from streams.kafka.retrying import transient_retry
from streams.kafka.topics import TIMEOUT, offsets, partition_count


@dataclass(frozen=True)
class LagTarget:
    """A consumer group and the topics it reads."""

    group: str
    topics: tuple[str, ...]


def lag_targets(names: KafkaNames) -> tuple[LagTarget, ...]:
    """The groups that keep their offsets in Kafka (the projector keeps its
    own in PostgreSQL: its lag is the projection lag)."""
    return (
        LagTarget(names.orchestrator_group, (names.commands, names.phase_results)),
        LagTarget(names.phase_worker_group, (names.phase_tasks,)),
    )


def lag_of(low: Mapping[int, int], end: Mapping[int, int], committed: Mapping[int, int]) -> int:
    """Records not yet consumed, summed over partitions; a partition with no
    committed offset is behind by all it retains (the groups start earliest)."""
    total = 0
    for partition, last in end.items():
        position = committed.get(partition, -1)
        if position < 0:
            position = low.get(partition, 0)
        total += max(0, last - position)
    return total


def consumer_lag(settings: Settings, target: LagTarget) -> dict[str, int]:
    """{topic: lag} of one group."""
    lags = {}
    for topic in target.topics:
        count = partition_count(settings, topic)
        low = offsets(settings, topic, count, OffsetSpec.earliest())
        end = offsets(settings, topic, count, OffsetSpec.latest())
        lags[topic] = lag_of(low, end, committed_offsets(settings, target.group, topic, count))
    return lags


def committed_offsets(settings: Settings, group: str, topic: str, count: int) -> dict[int, int]:
    """{partition: committed offset}; -1 where the group has none."""
    asked = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(count)])]

    def ask() -> dict[int, int]:
        client = admin(settings)  # kept alive until the futures are done
        future = client.list_consumer_group_offsets(asked, request_timeout=TIMEOUT)[group]
        return {tp.partition: tp.offset for tp in future.result(TIMEOUT).topic_partitions}

    return transient_retry(ask)

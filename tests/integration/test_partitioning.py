"""All producers agree on a key's partition: confluent-kafka (API, CLI) and
aiokafka (the projector, the phase workers) use Java's murmur2, so a
migration stays on one partition."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from api.publisher import Publisher
from config import KafkaNames, Settings

pytestmark = pytest.mark.integration


async def test_the_api_publisher_partitions_like_aiokafka(
    settings: Settings, topics: KafkaNames
) -> None:
    publisher = Publisher(settings)
    partitions = list(range(settings.kafka.topic_partitions))
    try:
        for i in range(40):
            key = f"m-{i}".encode()
            position = await publisher.publish(topics.commands, key, b"{}", [])
            assert position.partition == DefaultPartitioner()(key, partitions, partitions)
    finally:
        await publisher.close()

"""The event log as the rebuild and the refold read it: a consumer of no group
on the events topic, started, with the topic's partition count, or an error
of the caller's kind that says why the log cannot be read."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from config import Settings
from projections.exceptions import ProjectionError
from streams.kafka import clients
from streams.kafka.topics import partition_count


async def open_log(
    settings: Settings, topic: str, error: type[ProjectionError]
) -> tuple[AIOKafkaConsumer, int]:
    """A started consumer assigned nothing yet, and `topic`'s partition count."""
    consumer = clients.aio_consumer(settings, None, request_timeout_ms=15_000)
    try:
        await consumer.start()
        topics = await consumer.topics()  # the cluster's metadata, fetched now
    except KafkaError as exc:
        await consumer.stop()
        raise error(f"Kafka at {settings.kafka.bootstrap_servers} is unreachable: {exc}") from exc
    if topic not in topics:
        await consumer.stop()
        raise error(
            f"topic {topic!r} does not exist (check KAFKA_TOPIC_PREFIX, or create the"
            " topics with `migrator topics create`)"
        )
    return consumer, await asyncio.to_thread(partition_count, settings, topic)

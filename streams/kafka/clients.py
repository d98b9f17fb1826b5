"""Every Kafka client the product uses, built here and nowhere else.

One place sets what all of them must agree on: the bootstrap servers,
read_committed (a reader never sees an aborted or open transaction's
records), idempotent `acks=all` producers, offsets committed by the code
(never automatically) and reset to the earliest record.

`murmur2_random` is the partitioner of the Java client (console producer)
and of aiokafka's default partitioner: every producer must agree, or a
migration's records would land on different partitions and lose their order.

librdkafka's own log lines go to the `librdkafka` logger (the process's log
format and level, captured by the tests), not straight to stderr.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from config.settings import Settings

CLIENT_LOG = logging.getLogger("librdkafka")

if TYPE_CHECKING:  # aiokafka is imported by the asyncio processes only (not the CLI)
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "logger": CLIENT_LOG,
        **extra,
    }


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "group.id": group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "logger": CLIENT_LOG,
        **extra,
    }


def producer(settings: Settings, **extra: Any) -> Producer:
    """An idempotent producer (not transactional)."""
    return Producer(producer_config(settings, **extra))


def transactional_producer(settings: Settings, transactional_id: str, **extra: Any) -> Producer:
    """A transactional producer; `streams.kafka.transaction` runs its transactions."""
    return Producer(producer_config(settings, **{"transactional.id": transactional_id, **extra}))


def consumer(settings: Settings, group_id: str, **extra: Any) -> Consumer:
    """A read_committed consumer whose offsets the caller commits (or never does)."""
    return Consumer(consumer_config(settings, group_id, **extra))


def admin(settings: Settings) -> AdminClient:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "logger": CLIENT_LOG,
    }
    return AdminClient(config)


def aio_producer(settings: Settings, **extra: Any) -> AIOKafkaProducer:
    """aiokafka's idempotent producer (its default partitioner is murmur2, as above)."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        **extra,
    )


def aio_consumer(settings: Settings, group_id: str | None, **extra: Any) -> AIOKafkaConsumer:
    """aiokafka's read_committed consumer; `group_id=None` reads by assignment only."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=group_id,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **extra,
    )

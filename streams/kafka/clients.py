"""Shared confluent-kafka client settings.

`murmur2_random` is the partitioner of the Java client (console producer)
and of aiokafka (Faust): every producer must agree, or a migration's records
would land on different partitions and lose their order.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        **extra,
    }


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **extra,
    }

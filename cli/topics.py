"""Create every topic of the contract (config.names), co-partitioned, idempotently."""

from __future__ import annotations

from config import KafkaNames, Settings
from streams.kafka import topics


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create the missing topics; return {topic: 'created' | 'exists'}."""
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    return topics.create_topics(
        settings, names.topic_specs(settings.kafka.topic_partitions), timeout
    )

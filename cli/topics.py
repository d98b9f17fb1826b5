"""Create every topic of the contract, co-partitioned, idempotently."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from config import KafkaNames, Settings

KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
COMPACTED = {"cleanup.policy": "compact"}


def topic_specs(names: KafkaNames, settings: Settings) -> list[NewTopic]:
    """Every topic with the same partition count, so keys co-partition."""
    configs: dict[str, dict[str, str]] = {names.events: KEEP_FOREVER}
    configs.update({dlq: KEEP_FOREVER for dlq in names.dlq_topics()})
    configs[names.state_changelog] = COMPACTED
    all_topics = [*names.main_topics(), *names.dlq_topics(), names.state_changelog]
    return [
        NewTopic(
            t,
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            config=configs.get(t, {}),
        )
        for t in all_topics
    ]


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create the missing topics; return {topic: 'created' | 'exists'}."""
    names = KafkaNames(app_id=settings.app_id, prefix=settings.topic_prefix)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    futures = admin.create_topics(topic_specs(names, settings), request_timeout=timeout)
    outcome: dict[str, str] = {}
    for topic, future in futures.items():
        try:
            future.result(timeout)
            outcome[topic] = "created"
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
            outcome[topic] = "exists"
    return outcome

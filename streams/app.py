"""The Faust app, configured from settings. Nothing else lives here."""

from __future__ import annotations

import faust

from config import KafkaNames, Settings, load_settings


def create_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        web_enabled=False,
    )


settings = load_settings()
names = KafkaNames(app_id=settings.app_id, prefix=settings.topic_prefix)
app = create_app(settings)

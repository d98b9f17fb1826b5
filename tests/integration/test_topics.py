"""Topic creation against the real broker."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from cli.topics import create_topics
from config import KafkaNames, Settings

pytestmark = pytest.mark.integration


def described(admin: AdminClient, resources: list[ConfigResource]) -> list[dict[str, Any]]:
    """The topics' configs, once every broker knows the topics (a topic just
    created may be unknown to the broker asked for a moment)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return [f.result(10) for f in admin.describe_configs(resources).values()]
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_every_topic_is_created_co_partitioned_and_idempotently(
    settings: Settings, names: KafkaNames
) -> None:
    first = create_topics(settings)
    second = create_topics(settings)

    co_partitioned = {*names.main_topics(), *names.dlq_topics(), names.state_changelog}
    expected = {*co_partitioned, names.redrive_ledger}
    assert first == dict.fromkeys(expected, "created")
    assert second == dict.fromkeys(expected, "exists")
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    metadata = admin.list_topics(timeout=10).topics
    assert {len(metadata[t].partitions) for t in co_partitioned} == {
        settings.kafka.topic_partitions
    }
    assert len(metadata[names.redrive_ledger].partitions) == 1


def test_events_are_kept_forever_and_the_state_changelog_is_compacted(
    settings: Settings, topics: KafkaNames
) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, topics.events),
        ConfigResource(ConfigResource.Type.TOPIC, topics.state_changelog),
        ConfigResource(ConfigResource.Type.TOPIC, topics.redrive_ledger),
    ]
    events, changelog, ledger = described(admin, resources)

    assert events["retention.ms"].value == "-1"
    assert changelog["cleanup.policy"].value == "compact"
    assert ledger["retention.ms"].value == "-1"
    assert ledger["retention.bytes"].value == "-1"

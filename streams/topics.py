"""Every topic and table the Faust app declares. Values are raw bytes: the
agents decode them with our codec, so a bad record never crashes a worker."""

from __future__ import annotations

import faust

from config.names import STATE_TABLE
from streams.app import app, names, settings


def _raw_topic(name: str) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )


commands_topic = _raw_topic(names.commands)
events_topic = _raw_topic(names.events)
commands_dlq_topic = _raw_topic(names.dlq(names.commands))

# Faust derives the changelog's serializers from key_type/value_type, not from
# the schema: both must say the same, or recovery cannot read what was written.
state_table = app.Table(
    STATE_TABLE,
    default=None,
    key_type=bytes,
    schema=faust.Schema(key_type=bytes, key_serializer="raw", value_serializer="json"),
    partitions=settings.topic_partitions,
)

"""`migrator topic replay` copies a range of one topic into another, exactly
once: by offsets, by time, and again without duplicates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from config import KafkaNames, Settings
from ops.replay import REPLAYED_FROM
from streams.kafka.clients import producer_config
from streams.kafka.dead_letter_headers import header
from tests.support.dead_letters import migrator, records

pytestmark = pytest.mark.integration


def _produce(settings: Settings, topic: str, values: list[tuple[int, bytes, int]]) -> None:
    """(partition, value, timestamp ms) records, keyed by their value."""
    producer = Producer(producer_config(settings))
    for partition, value, ts in values:
        producer.produce(
            topic, value, value, partition=partition, timestamp=ts, headers=[("h", value)]
        )
    assert producer.flush(30) == 0


def test_an_offset_range_is_copied_once_with_key_value_and_headers(
    settings: Settings, topics: KafkaNames
) -> None:
    now = int(datetime.now(UTC).timestamp() * 1000)
    _produce(settings, topics.events, [(0, f"e{i}".encode(), now) for i in range(6)])
    args = ("topic", "replay", "--from-topic", topics.events, "--to-topic", topics.phase_tasks,
            "--from-offset", "0:1", "--to-offset", "0:4")  # fmt: skip

    first = migrator(settings, *args)
    again = migrator(settings, *args)

    assert first[0] == 0, first[2]
    assert (json.loads(first[1])["copied"], json.loads(again[1])["copied"]) == (3, 0)
    copied = records(settings, topics.phase_tasks)
    assert [(r.partition, r.key, r.value) for r in copied] == [
        (0, b"e1", b"e1"),
        (0, b"e2", b"e2"),
        (0, b"e3", b"e3"),
    ]
    assert [header(r.headers, "h") for r in copied] == ["e1", "e2", "e3"]
    assert header(copied[0].headers, REPLAYED_FROM) == f"{topics.events}/0/1"


def test_a_time_range_picks_the_records_written_in_it(
    settings: Settings, topics: KafkaNames
) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ms = [int((t0 + timedelta(minutes=m)).timestamp() * 1000) for m in range(4)]
    _produce(
        settings,
        topics.events,
        [(p, f"p{p}m{m}".encode(), ms[m]) for p in (0, 1) for m in range(4)],
    )

    code, _, err = migrator(
        settings, "topic", "replay", "--from-topic", topics.events, "--to-topic",
        topics.phase_tasks, "--from-time", "2026-01-01T00:01:00Z", "--to-time",
        "2026-01-01T00:03:00+00:00",
    )  # fmt: skip

    assert code == 0, err
    assert sorted(r.value for r in records(settings, topics.phase_tasks)) == [
        b"p0m1", b"p0m2", b"p1m1", b"p1m2",
    ]  # fmt: skip


def test_bad_arguments_say_what_is_wrong(settings: Settings, topics: KafkaNames) -> None:
    base = ("topic", "replay", "--from-topic", topics.events)

    same = migrator(settings, *base, "--to-topic", topics.events)
    missing = migrator(settings, *base, "--to-topic", "nope")
    partition = migrator(settings, *base, "--to-topic", topics.commands, "--from-offset", "9:0")
    naive = migrator(settings, *base, "--to-topic", topics.commands, "--from-time", "2026-01-01")

    assert [c for c, _, _ in (same, missing, partition, naive)] == [1, 1, 1, 1]
    assert "must differ" in same[2]
    assert "'nope' does not exist" in missing[2]
    assert "not [9]" in partition[2]
    assert "no time zone" in naive[2]

"""Lag and depth as the operator reads them, against the real broker: the
same figures from `migrator lag --json` and from GET /api/v1/lag."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from config import KafkaNames, Settings
from streams.kafka.clients import consumer_config, producer_config
from tests.support.dead_letters import migrator, write_dead_letters
from tests.support.read_side import VIEWER, call, prepare_schema, serving, with_tokens

pytestmark = pytest.mark.integration


def _backlog(settings: Settings, topics: KafkaNames) -> dict[tuple[str, str], int]:
    """Seven commands, three consumed by the orchestrator's group, three dead
    letters; the lags expected for every group and topic."""
    producer = Producer(producer_config(settings))
    for i in range(7):
        producer.produce(topics.commands, b"x", b"k", partition=0 if i < 5 else 1)
    assert producer.flush(30) == 0
    consumer = Consumer(consumer_config(settings, topics.orchestrator_group))
    consumer.commit(offsets=[TopicPartition(topics.commands, 0, 3)], asynchronous=False)
    consumer.close()
    write_dead_letters(settings, topics.dlq(topics.commands), topics.commands, [b"a", b"b", b"c"])
    return {
        (topics.orchestrator_group, topics.commands): (5 - 3) + 2,
        (topics.orchestrator_group, topics.phase_results): 0,
        (topics.phase_worker_group, topics.phase_tasks): 0,
    }


def _depths(topics: KafkaNames) -> dict[str, int]:
    return {t: 3 if t == topics.dlq(topics.commands) else 0 for t in topics.dlq_topics()}


def _figures(report: dict[str, Any]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    lags = {(r["group"], r["topic"]): r["lag"] for r in report["consumer_lag"]}
    return lags, {r["topic"]: r["records"] for r in report["dlq_depth"]}


def test_the_cli_shows_lag_per_group_and_topic_and_depth_per_dlq(
    settings: Settings, topics: KafkaNames
) -> None:
    lags = _backlog(settings, topics)

    code, out, _ = migrator(settings, "lag", "--json")
    table = migrator(settings, "lag")

    assert code == 0
    assert _figures(json.loads(out)) == (lags, _depths(topics))
    assert table[0] == 0 and "consumer lag" in table[1] and "DLQ depth" in table[1]


async def test_viewers_read_lag_and_depth_over_http(settings: Settings, topics: KafkaNames) -> None:
    lags = _backlog(settings, topics)
    await prepare_schema(settings)

    async with serving(with_tokens(settings)) as base, aiohttp.ClientSession() as session:
        status, report = await call(session, "GET", f"{base}/api/v1/lag", VIEWER)
        anonymous, _ = await call(session, "GET", f"{base}/api/v1/lag", None)

    assert status == 200
    assert _figures(report) == (lags, _depths(topics))
    assert anonymous == 401

"""Lag and depth as an operator reads them: consumer lag per group and topic
(the groups that keep their offsets in Kafka) and DLQ depth per dead-letter
topic (committed records retained), as plain data. `migrator lag` renders
it, `GET /api/v1/lag` serialises it; the worker's metrics thread reads the
same counts (streams.kafka.lag and .depth) into Prometheus.

Each call counts afresh: depth reads every dead-letter topic once.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import KafkaNames, Settings
from streams.kafka.depth import DlqDepth
from streams.kafka.lag import LagTarget, consumer_lag, lag_targets


@dataclass(frozen=True)
class ConsumerLag:
    group: str
    topic: str
    lag: int  # offsets from the group's committed position to the committed end


@dataclass(frozen=True)
class QueueDepth:
    topic: str  # a dead-letter topic
    records: int  # committed records retained


@dataclass(frozen=True)
class LagReport:
    consumer_lag: tuple[ConsumerLag, ...]
    dlq_depth: tuple[QueueDepth, ...]


def lag_report(settings: Settings) -> LagReport:
    """Every group's lag and every dead-letter topic's depth, now."""
    return LagReport(consumer_lags(settings), dlq_depths(settings))


def consumer_lags(
    settings: Settings, targets: tuple[LagTarget, ...] | None = None
) -> tuple[ConsumerLag, ...]:
    """Per group and topic (default: the groups that keep offsets in Kafka)."""
    chosen = lag_targets(_names(settings)) if targets is None else targets
    return tuple(
        ConsumerLag(target.group, topic, lag)
        for target in chosen
        for topic, lag in consumer_lag(settings, target).items()
    )


def dlq_depths(settings: Settings) -> tuple[QueueDepth, ...]:
    """Per dead-letter topic of the contract."""
    counted = DlqDepth(settings, _names(settings).dlq_topics()).refresh()
    return tuple(QueueDepth(topic, records) for topic, records in counted.items())


def _names(settings: Settings) -> KafkaNames:
    return KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)

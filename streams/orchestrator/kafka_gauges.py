"""Metrics read from Kafka rather than counted in-process: DLQ depth per
dead-letter topic and consumer lag per group and topic, refreshed by a
background thread (a scrape never waits for Kafka)."""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaException

from config import KafkaNames, Settings
from streams.kafka.depth import DlqDepth
from streams.kafka.errors import NoSuchTopic
from streams.kafka.lag import LagTarget, consumer_lag, lag_targets
from streams.orchestrator import metrics

log = logging.getLogger(__name__)


class OpsMetrics(threading.Thread):
    """Refreshes `migrator_dlq_depth` and `migrator_consumer_lag` until `stop`."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event,
        targets: tuple[LagTarget, ...] | None = None,
    ) -> None:
        super().__init__(name="ops-metrics", daemon=True)
        names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        self.settings, self.stop = settings, stop
        self.targets = lag_targets(names) if targets is None else targets
        self.depth = DlqDepth(settings, names.dlq_topics())

    def run(self) -> None:
        while not self.stop.is_set():
            self.refresh()
            self.stop.wait(self.settings.ops.metrics_interval_seconds)

    def refresh(self) -> None:
        try:
            for topic, depth in self.depth.refresh().items():
                metrics.DLQ_DEPTH.labels(topic).set(depth)
            for target in self.targets:
                for topic, lag in consumer_lag(self.settings, target).items():
                    metrics.CONSUMER_LAG.labels(target.group, topic).set(lag)
        except (KafkaException, NoSuchTopic, TimeoutError) as exc:  # next refresh tries again
            log.warning("DLQ depth / consumer lag not refreshed: %s", exc)

"""The one way records are handed to a confluent-kafka producer.

`Producer.produce` only enqueues; when librdkafka's local queue is full it
raises BufferError at once. Serving delivery reports (`poll`) empties the
queue as the broker acknowledges, so the record is retried after each poll,
for a bounded time: a queue that stays full means deliveries have stopped
(the cluster is gone), and the caller gets a clear error instead of a hang.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from confluent_kafka import Producer

from streams.kafka import tracing
from streams.kafka.errors import ProduceQueueFull

Header = tuple[str, bytes | None]

DRAIN_SECONDS = 0.1  # one poll's wait for delivery reports
BUFFER_WAIT_SECONDS = 120.0  # far beyond any delivery on a reachable cluster


def produce(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header],
    partition: int | None = None,
    *,
    wait: float = BUFFER_WAIT_SECONDS,
) -> None:
    """Enqueue one record (on `partition`, else by the partitioner)."""
    at = -1 if partition is None else partition  # -1: librdkafka's "unassigned", the default
    deadline = time.monotonic() + wait
    headers = tracing.injected(headers)
    while True:
        try:
            producer.produce(topic, value, key, at, headers=list(headers))
            return
        except BufferError:
            if time.monotonic() >= deadline:
                raise ProduceQueueFull(_full(producer, topic, wait)) from None
            producer.poll(DRAIN_SECONDS)


def _full(producer: Producer, topic: str, wait: float) -> str:
    return (
        f"cannot produce to {topic}: the producer's queue has stayed full for {wait:g} s"
        f" ({len(producer)} records undelivered); is the Kafka cluster reachable?"
    )

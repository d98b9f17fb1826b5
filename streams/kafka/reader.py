"""Read a topic's committed records (read_committed) up to its end at the time
of the call, in offset order per partition; with `follow`, keep reading."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from config import Settings
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.retrying import transient_retry


def read_committed(
    settings: Settings,
    topic: str,
    partitions: Iterable[int] | None = None,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    timeout: float = 120.0,
) -> Iterator[Consumed]:
    """Every committed record of `topic` (or of its `partitions`) to the end."""
    consumer = clients.consumer(
        settings, f"{settings.kafka.app_id}-reader", **{"enable.partition.eof": True}
    )
    try:
        parts = sorted(partitions) if partitions is not None else _partitions(consumer, topic)
        ends = {p: _end_offset(consumer, topic, p) for p in parts}
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in parts])
        pending = {p for p in parts if ends[p] > 0} if from_beginning else set()
        yield from _read(consumer, ends, pending, follow, time.monotonic() + timeout)
    finally:
        consumer.close()


def _read(
    consumer: Consumer, ends: dict[int, int], pending: set[int], follow: bool, deadline: float
) -> Iterator[Consumed]:
    while pending or follow:
        if not follow and time.monotonic() > deadline:
            raise TimeoutError(f"partitions {sorted(pending)} not read to their end in time")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
        record = Consumed.of(msg)
        if error is None:
            yield record
        if record.offset + (0 if error is not None else 1) >= ends[record.partition]:
            pending.discard(record.partition)


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    meta = transient_retry(lambda: consumer.list_topics(topic, timeout=30)).topics[topic]
    if meta.error is not None:
        raise KafkaException(meta.error)
    return sorted(meta.partitions)


def _end_offset(consumer: Consumer, topic: str, partition: int) -> int:
    tp = TopicPartition(topic, partition)
    return transient_retry(lambda: consumer.get_watermark_offsets(tp, timeout=30, cached=False)[1])

"""DLQ depth: the committed records retained in each dead-letter topic (the
fallback queue's size), counted exactly.

Offsets alone overcount: every transaction leaves a commit marker, and an
aborted one leaves records no read_committed reader sees. So each partition
is read once, then only its new records on each refresh; a purge (the first
offset moves) or a recreated topic (the end moves back) starts it afresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from config import Settings
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.topics import watermarks


@dataclass
class _Counted:
    low: int  # the first offset when counting started
    position: int  # counted up to here
    records: int = 0


class DlqDepth:
    """Counts committed records per dead-letter topic; `refresh` reads what is new."""

    def __init__(self, settings: Settings, topics: tuple[str, ...]) -> None:
        self.settings, self.topics = settings, topics
        self.counted: dict[tuple[str, int], _Counted] = {}

    def refresh(self, timeout: float = 30.0) -> dict[str, int]:
        """{topic: committed records retained}."""
        ends: dict[tuple[str, int], int] = {}
        for topic in self.topics:
            for partition, (low, high) in watermarks(self.settings, topic).items():
                self._reset_if_moved((topic, partition), low, high)
                ends[(topic, partition)] = high
        self._read_new(ends, time.monotonic() + timeout)
        return {
            t: sum(c.records for (tt, _), c in self.counted.items() if tt == t) for t in self.topics
        }

    def _reset_if_moved(self, at: tuple[str, int], low: int, high: int) -> None:
        known = self.counted.get(at)
        if known is None or low > known.low or high < known.position:
            self.counted[at] = _Counted(low, low)

    def _read_new(self, ends: dict[tuple[str, int], int], deadline: float) -> None:
        behind = {at for at, end in ends.items() if self.counted[at].position < end}
        if not behind:
            return
        consumer = clients.consumer(
            self.settings,
            f"{self.settings.kafka.app_id}-dlq-depth",
            **{"enable.partition.eof": True},
        )
        try:
            consumer.assign(
                [TopicPartition(t, p, self.counted[(t, p)].position) for t, p in behind]
            )
            while behind and time.monotonic() < deadline:
                self._one(consumer.poll(0.5), ends, behind)
        finally:
            consumer.close()

    def _one(
        self, msg: Message | None, ends: dict[tuple[str, int], int], behind: set[tuple[str, int]]
    ) -> None:
        if msg is None:
            return
        error = msg.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
        record = Consumed.of(msg)
        at = (record.topic, record.partition)
        counted = self.counted[at]
        if error is None and record.offset < ends[at]:
            counted.records += 1
            counted.position = record.offset + 1
        if error is not None or record.offset + 1 >= ends[at]:  # at the end, or past it
            counted.position = ends[at]
            behind.discard(at)

"""Copy a range of one topic into another (key, value, headers), exactly once,
for forensic reprocessing.

A range is an offset range per partition, or a time range resolved to one.
The copy runs in Kafka transactions: each batch of records and the replay's
position (the offsets of its own consumer group, `<app>-replay-<id>`) are
committed together, so a replay that is stopped or killed and run again with
the same arguments goes on where it stopped and copies nothing twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from config import KafkaNames, Settings
from ops.errors import BadSelection
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.produce import produce
from streams.kafka.retrying import transient_retry
from streams.kafka.topics import TIMEOUT, partition_count, watermarks
from streams.kafka.transaction import Transactions

REPLAYED_FROM = "migrator-replayed-from"  # "<topic>/<partition>/<offset>"
BATCH = 500


@dataclass(frozen=True)
class OffsetRange:
    """Per partition, the offsets to copy: [start, end)."""

    start: dict[int, int]
    end: dict[int, int]

    @property
    def size(self) -> int:
        return sum(max(0, self.end[p] - s) for p, s in self.start.items())


def resolve_offsets(
    marks: Mapping[int, tuple[int, int]],
    from_offsets: Mapping[int, int],
    to_offsets: Mapping[int, int],
) -> OffsetRange:
    """Offsets asked for per partition, within what the topic holds. With no
    offsets at all, everything; with some, only the partitions they name."""
    named = set(from_offsets) | set(to_offsets)
    wrong = sorted(named - set(marks))
    if wrong:
        raise BadSelection(f"the topic has partitions 0 to {len(marks) - 1}, not {wrong}")
    chosen = sorted(named) if named else sorted(marks)
    start = {p: max(marks[p][0], from_offsets.get(p, 0)) for p in chosen}
    end = {p: min(marks[p][1], to_offsets.get(p, marks[p][1])) for p in chosen}
    return OffsetRange(start, end)


def time_offsets(settings: Settings, topic: str, at: datetime, count: int) -> dict[int, int]:
    """Per partition, the first offset whose timestamp is at or after `at`
    (the end of the partition when there is none)."""
    millis = int(at.timestamp() * 1000)
    consumer = clients.consumer(settings, f"{settings.kafka.app_id}-reader")
    try:
        asked = [TopicPartition(topic, p, millis) for p in range(count)]
        found = transient_retry(lambda: consumer.offsets_for_times(asked, timeout=TIMEOUT))
    finally:
        consumer.close()
    ends = watermarks(settings, topic)
    return {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition][1] for tp in found}


def replay_id(source: str, target: str, selected: OffsetRange) -> str:
    """The same arguments give the same id: a second run resumes the first."""
    text = f"{source}>{target}:{sorted(selected.start.items())}:{sorted(selected.end.items())}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class TopicReplay:
    """One replay: `source` range into `target`."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        target: str,
        selected: OffsetRange,
        *,
        run_id: str | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] = lambda _: None,
    ) -> None:
        if source == target:
            raise BadSelection("--from-topic and --to-topic must differ")
        self.settings, self.source, self.target, self.range = settings, source, target, selected
        self.id = run_id or replay_id(source, target, selected)
        self.group = KafkaNames(app_id=settings.kafka.app_id).replay_group(self.id)
        self.stop, self.progress = stop or threading.Event(), progress
        self.partitions = partition_count(settings, target)

    def run(self) -> int:
        """Copy what is left of the range; the number of records copied now."""
        producer = clients.transactional_producer(self.settings, self.group, **{"linger.ms": 20})
        transactions = Transactions(producer, TIMEOUT)
        transactions.init()  # fences an earlier run of the same replay
        consumer = clients.consumer(self.settings, self.group, **{"enable.partition.eof": True})
        try:
            return self._copy(transactions, consumer)
        finally:
            consumer.close()

    def _copy(self, transactions: Transactions, consumer: Consumer) -> int:
        asked = [TopicPartition(self.source, p) for p in self.range.start]
        done = transient_retry(lambda: consumer.committed(asked, TIMEOUT))
        at = {tp.partition: max(tp.offset, self.range.start[tp.partition]) for tp in done}
        left = {p for p, o in at.items() if o < self.range.end[p]}
        consumer.assign([TopicPartition(self.source, p, at[p]) for p in left])
        copied = 0
        while left and not self.stop.is_set():
            batch = [m for m in consumer.consume(BATCH, 0.5) if self._usable(m, left)]
            copied += self._transaction(transactions, consumer, batch)
            self.progress(copied)
        return copied

    def _usable(self, msg: Message, left: set[int]) -> bool:
        error, partition, offset = msg.error(), int(msg.partition() or 0), int(msg.offset() or 0)
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
        end = self.range.end[partition]
        if error is not None or offset + 1 >= end:  # at the partition's end of range
            left.discard(partition)
        return error is None and offset < end

    def _transaction(
        self, transactions: Transactions, consumer: Consumer, batch: list[Message]
    ) -> int:
        if not batch:
            return 0
        with transactions.open():
            for msg in batch:
                self._produce(transactions.producer, Consumed.of(msg))
            positions = {(int(m.partition() or 0)): int(m.offset() or 0) + 1 for m in batch}
            offsets = [TopicPartition(self.source, p, o) for p, o in positions.items()]
            transactions.commit(offsets, consumer.consumer_group_metadata())
        return len(batch)

    def _produce(self, producer: Producer, record: Consumed) -> None:
        origin = f"{record.topic}/{record.partition}/{record.offset}".encode()
        headers = [*record.headers, (REPLAYED_FROM, origin)]
        keep = record.partition if record.partition < self.partitions else None
        produce(producer, self.target, record.key, record.value, headers, keep)

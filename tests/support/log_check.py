"""Read a topic to its end with `read_committed` and check the event log the
way Kafka's transactional copy test checks its output."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from config import Settings
from schemas import decode_event
from streams.consumed import Consumed
from streams.domain import Event, replay


def read_all(settings: Settings, topic: str, timeout: float = 120.0) -> list[Consumed]:
    """Every committed record of `topic`, in offset order per partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"check-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        parts = sorted(meta.partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30, False)[1] for p in parts
        }
        pending = {p for p in parts if ends[p] > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        records: list[Consumed] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(str(err))
            record = Consumed.of(msg)
            if err is None:
                records.append(record)
            if record.offset + (0 if err else 1) >= ends[record.partition]:
                pending.discard(record.partition)
        if pending:
            raise TimeoutError(f"{topic} partitions {sorted(pending)} not read to the end")
        return records
    finally:
        consumer.close()


@dataclass
class LogReport:
    events: dict[str, list[Event]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def decisions(self, causation_id: str) -> int:
        """How many separate decisions an input caused (0 if none)."""
        return self._blocks.get(causation_id, 0)

    _blocks: dict[str, int] = field(default_factory=dict)


def check_events(records: Iterable[Consumed]) -> LogReport:
    """Per migration: sequences exactly 1..N; each input decided at most once."""
    report = LogReport()
    by_migration: dict[str, list[Event]] = defaultdict(list)
    for record in records:
        event = decode_event(record.value, record.headers)
        by_migration[event.migration_id].append(event)
    for mid, events in by_migration.items():
        sequences = [e.sequence for e in events]
        if sequences != list(range(1, len(events) + 1)):
            report.violations.append(f"{mid}: sequences {_summary(sequences)}")
        previous = None
        for event in events:
            if event.causation_id != previous:
                report._blocks[event.causation_id] = report._blocks.get(event.causation_id, 0) + 1
            previous = event.causation_id
    repeated = [c for c, n in report._blocks.items() if n > 1]
    if repeated:
        report.violations.append(f"{len(repeated)} inputs decided more than once: {repeated[:5]}")
    report.events = dict(by_migration)
    return report


def final_status(report: LogReport, migration_id: str) -> str | None:
    events = report.events.get(migration_id)
    if not events:
        return None
    try:
        return replay(migration_id, events).status.value
    except ValueError as exc:
        return f"unreplayable: {exc}"


def _summary(sequences: list[int]) -> str:
    dupes = sorted({s for s in sequences if sequences.count(s) > 1})
    return f"{len(sequences)} events, max {max(sequences)}, repeated {dupes[:10]}"

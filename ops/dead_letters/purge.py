"""Delete dead letters for good: every record of a dead-letter topic before an
offset per partition (the Admin API's DeleteRecords; nothing else can remove
one record from a Kafka topic)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from config import Settings
from ops.dead_letters.plan import parse_position
from ops.errors import BadSelection
from streams.kafka.retrying import transient_retry
from streams.kafka.topics import TIMEOUT, admin, partition_count


@dataclass(frozen=True)
class PurgePlan:
    dlq: str
    before: dict[int, int]  # partition -> delete every record below this offset
    records: int  # committed dead letters that go

    def preview(self) -> dict[str, object]:
        return {"dlq": self.dlq, "records": self.records, "before": self.before}


def plan_purge(
    dlq: str, positions: Iterable[tuple[int, int]], before: Mapping[int, int] | None
) -> PurgePlan:
    """Purge below `before` ({partition: offset}), or (None) every record read
    (at `positions`: (partition, offset) each)."""
    cut: dict[int, int] = dict(before or {})
    count = 0
    for partition, offset in positions:
        if before is None:
            cut[partition] = max(cut.get(partition, 0), offset + 1)
        if offset < cut.get(partition, 0):
            count += 1
    return PurgePlan(dlq, cut, count)


def parse_before(texts: Iterable[str]) -> dict[int, int]:
    """`p:o` strings: delete partition p's records below offset o."""
    return dict(parse_position(text) for text in texts)


def purge(settings: Settings, plan: PurgePlan) -> dict[int, int]:
    """Delete as planned; {partition: its first offset now}."""
    count = partition_count(settings, plan.dlq)
    wrong = sorted(p for p in plan.before if p >= count)
    if wrong:
        raise BadSelection(f"{plan.dlq} has {count} partitions, not {wrong}")
    asked = [TopicPartition(plan.dlq, p, o) for p, o in plan.before.items() if o > 0]
    if not asked:
        return {}

    def delete() -> dict[int, int]:
        client = admin(settings)  # kept alive until the futures are done
        futures = client.delete_records(asked, request_timeout=TIMEOUT)
        return {tp.partition: f.result(TIMEOUT).low_watermark for tp, f in futures.items()}

    return transient_retry(delete)

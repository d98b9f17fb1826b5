"""The redrive ledger: one record per dead letter sent back to its topic,
written in the same Kafka transaction as the redriven record itself.

It makes redrive idempotent by the dead letter's position (topic, partition,
offset): a position in the ledger is never redriven again, whether the run
that did it finished, was cancelled or was killed. It is also the audit log
of every redrive (when, where to, after how many failures), and where a
redriven record that fails again has its earlier failures counted from: its
headers say which dead letter it was, only the ledger says how often it had
failed (`Ledger.failures_before`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from config import KafkaNames, Settings
from streams.kafka.reader import read_committed
from streams.kafka.topics import ensure_topic


@dataclass(frozen=True)
class Redriven:
    """The audit record of one redrive."""

    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    to_topic: str
    to_partition: int | None
    attempts: int
    redriven_at: str
    run_id: str

    @property
    def key(self) -> bytes:
        return position_key(self.dlq_topic, self.dlq_partition, self.dlq_offset)

    def value(self) -> bytes:
        return json.dumps(asdict(self)).encode()


def ledger_topic(settings: Settings) -> str:
    return KafkaNames(
        app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix
    ).redrive_ledger


def position_key(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}/{partition}/{offset}".encode()


def ensure_ledger(settings: Settings) -> str:
    """The ledger topic, created as config.names declares it when missing."""
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    ensure_topic(settings, names.topic_spec(names.redrive_ledger, settings.kafka.topic_partitions))
    return names.redrive_ledger


DlqPosition = tuple[str, int, int]  # a dead letter's topic, partition, offset


@dataclass(frozen=True)
class Ledger:
    """Every committed redrive, by the position of the dead letter it sent back."""

    entries: Mapping[DlqPosition, Redriven] = field(default_factory=dict)

    def positions(self, dlq: str) -> dict[tuple[int, int], Redriven]:
        """{(partition, offset): its audit record} of every redrive from `dlq`."""
        return {(p, o): entry for (topic, p, o), entry in self.entries.items() if topic == dlq}

    def failures_before(self, source: DlqPosition | None, to_topic: str | None) -> int:
        """How often a record redriven from the dead letter at `source` to
        `to_topic` had failed, as its redrive wrote it; 0 for a redrive the
        ledger does not hold (a record's headers are only its word)."""
        entry = self.entries.get(source) if source is not None else None
        return entry.attempts if entry is not None and entry.to_topic == to_topic else 0


def read_ledger(settings: Settings) -> Ledger:
    """The committed ledger, read to its end."""
    entries: dict[DlqPosition, Redriven] = {}
    for record in read_committed(settings, ensure_ledger(settings)):
        entry = Redriven(**json.loads(record.value or b"{}"))
        entries[(entry.dlq_topic, entry.dlq_partition, entry.dlq_offset)] = entry
    return Ledger(entries)

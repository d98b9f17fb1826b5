"""The redrive ledger: one record per dead letter sent back to its topic,
written in the same Kafka transaction as the redriven record itself.

It makes redrive idempotent by the dead letter's position (topic, partition,
offset): a position in the ledger is never redriven again, whether the run
that did it finished, was cancelled or was killed. It is also the audit log
of every redrive (when, where to, after how many failures).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

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


def redriven_positions(settings: Settings, dlq: str) -> dict[tuple[int, int], Redriven]:
    """{(partition, offset): its audit record} of every committed redrive from `dlq`."""
    done: dict[tuple[int, int], Redriven] = {}
    for record in read_committed(settings, ensure_ledger(settings)):
        entry = Redriven(**json.loads(record.value or b"{}"))
        if entry.dlq_topic == dlq:
            done[(entry.dlq_partition, entry.dlq_offset)] = entry
    return done

"""Dead letters as an operator sees them: where they came from, why they
failed, how often; read from a dead-letter topic (read_committed).

How often: a dead letter's own `migrator-attempts`, but for a redriven record
that failed again, one more than the redrive ledger says it had failed when
it was redriven (its `migrator-redriven-from` names which redrive). The
headers of a record are only its word; the ledger is what redrive wrote.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from config import KafkaNames, Settings
from ops.dead_letters.ledger import Ledger
from ops.errors import NoSuchRecord
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letter_headers import (
    EXCEPTION_FQCN,
    EXCEPTION_MESSAGE,
    ORIGINAL_CONSUMER_GROUP,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TIMESTAMP,
    ORIGINAL_TOPIC,
    REDRIVEN_FROM,
    Header,
    header,
    number,
    shown,
)
from streams.kafka.dead_letters import (
    failed_at,
    original_headers,
    redriven_from,
    written_attempts,
)
from streams.kafka.reader import read_committed
from streams.kafka.topics import partition_count, watermarks


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of a dead-letter topic, with its error headers read and
    how often it has failed (`counted_attempts`)."""

    record: Consumed
    attempts: int = 1

    @property
    def position(self) -> tuple[int, int]:
        return self.record.partition, self.record.offset

    @property
    def original_topic(self) -> str | None:
        return self.header(ORIGINAL_TOPIC)

    @property
    def original_partition(self) -> int | None:
        found = self.number(ORIGINAL_PARTITION)
        return found if found is not None and found >= 0 else None

    def header(self, name: str) -> str | None:
        return header(self.record.headers, name)

    def number(self, name: str) -> int | None:
        return number(self.record.headers, name)

    def summary(self) -> dict[str, Any]:
        """The record's position, key and error headers, as JSON-ready values."""
        return {
            "topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "key": _text(self.record.key),
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.number(ORIGINAL_OFFSET),
            "original_timestamp": self.number(ORIGINAL_TIMESTAMP),
            "consumer_group": self.header(ORIGINAL_CONSUMER_GROUP),
            "error_class": self.header(EXCEPTION_FQCN),
            "error_message": self.header(EXCEPTION_MESSAGE),
            "attempts": self.attempts,
            "failed_at": failed_at(self.record.headers),
            "redriven_from": self.header(REDRIVEN_FROM),
        }


def counted_attempts(headers: Sequence[Header], ledger: Ledger) -> int:
    """How often the record of a dead letter with these headers has failed."""
    source = redriven_from(headers)
    if source is None:
        return written_attempts(headers)
    return 1 + ledger.failures_before(source, header(headers, ORIGINAL_TOPIC))


def letter_of(record: Consumed, ledger: Ledger) -> DeadLetterRecord:
    return DeadLetterRecord(record, counted_attempts(record.headers, ledger))


def dlq_topic(names: KafkaNames, topic: str) -> str:
    """A dead-letter topic, named either way: `migration.commands` or its `.dlq`."""
    return topic if topic.endswith(".dlq") else names.dlq(topic)


def read_records(settings: Settings, dlq: str) -> list[Consumed]:
    """Every committed record of `dlq`, partition by partition, in offset order."""
    partition_count(settings, dlq)  # a missing topic is named, not waited for
    return sorted(read_committed(settings, dlq), key=lambda r: (r.partition, r.offset))


def read_letters(settings: Settings, dlq: str, ledger: Ledger) -> Iterator[DeadLetterRecord]:
    """Every committed record of `dlq` as a dead letter, in partition and offset order."""
    return (letter_of(r, ledger) for r in read_records(settings, dlq))


def read_letter(
    settings: Settings, dlq: str, partition: int, offset: int, ledger: Ledger
) -> DeadLetterRecord:
    """The committed record at `partition`/`offset` of `dlq`."""
    marks = watermarks(settings, dlq)
    if partition not in marks:
        raise NoSuchRecord(f"{dlq} has no partition {partition} (it has {len(marks)})")
    low, high = marks[partition]
    if not low <= offset < high:
        held = f"offsets {low} to {high - 1}" if low < high else "no records"
        raise NoSuchRecord(f"{dlq} partition {partition} holds {held}, not offset {offset}")
    consumer = clients.consumer(
        settings, f"{settings.kafka.app_id}-reader", **{"enable.partition.eof": True}
    )
    try:
        consumer.assign([TopicPartition(dlq, partition, offset)])
        found = _first(consumer, offset)
    finally:
        consumer.close()
    if found is None or found.offset != offset:
        raise NoSuchRecord(f"no committed record at {dlq} partition {partition} offset {offset}")
    return letter_of(found, ledger)


def decoded_original(letter: DeadLetterRecord, decode: Any) -> dict[str, Any]:
    """The original value decoded with `decode` when it can be, else its text."""
    record = letter.record
    found: dict[str, Any] = {"headers": shown(record.headers)}
    try:
        found["value"] = decode(record.value, original_headers(record.headers))
    except Exception as exc:  # a dead letter is often undecodable: that is why it is here
        found["value"] = _text(record.value)
        found["decode_error"] = f"{type(exc).__name__}: {exc}"
    return found


def _first(consumer: Consumer, offset: int) -> Consumed | None:
    while True:
        msg = consumer.poll(10.0)
        if msg is None:
            return None
        error = msg.error()
        if error is None:
            return Consumed.of(msg)
        if error.code() == KafkaError._PARTITION_EOF:
            return None
        if error.code() == KafkaError.OFFSET_OUT_OF_RANGE:
            raise NoSuchRecord(f"offset {offset} is out of range: {error.str()}")
        raise KafkaException(error)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode(errors="replace")

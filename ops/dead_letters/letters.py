"""Dead letters as an operator sees them: where they came from, why they
failed, how often; read from a dead-letter topic (read_committed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from config import KafkaNames, Settings
from ops.errors import NoSuchRecord
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letters import (
    EXCEPTION_FQCN,
    EXCEPTION_MESSAGE,
    FAILED_AT,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
    REDRIVEN_FROM,
    attempts_of,
    header,
    original_headers,
)
from streams.kafka.reader import read_committed
from streams.kafka.topics import partition_count, watermarks


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of a dead-letter topic, with its error headers read."""

    record: Consumed

    @property
    def position(self) -> tuple[int, int]:
        return self.record.partition, self.record.offset

    @property
    def original_topic(self) -> str | None:
        return self.header(ORIGINAL_TOPIC)

    @property
    def original_partition(self) -> int | None:
        text = self.header(ORIGINAL_PARTITION)
        return int(text) if text is not None and text.isdigit() else None

    @property
    def attempts(self) -> int:
        return attempts_of(self.record.headers)

    def header(self, name: str) -> str | None:
        return header(self.record.headers, name)

    def summary(self) -> dict[str, Any]:
        """The record's position, key and error headers, as JSON-ready values."""
        return {
            "topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "key": _text(self.record.key),
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": _int_or_none(self.header(ORIGINAL_OFFSET)),
            "error_class": self.header(EXCEPTION_FQCN),
            "error_message": self.header(EXCEPTION_MESSAGE),
            "attempts": self.attempts,
            "failed_at": self.header(FAILED_AT),
            "redriven_from": self.header(REDRIVEN_FROM),
        }


def dlq_topic(names: KafkaNames, topic: str) -> str:
    """A dead-letter topic, named either way: `migration.commands` or its `.dlq`."""
    return topic if topic.endswith(".dlq") else names.dlq(topic)


def read_letters(settings: Settings, dlq: str) -> Iterator[DeadLetterRecord]:
    """Every committed record of `dlq`, partition by partition, in offset order."""
    partition_count(settings, dlq)  # a missing topic is named, not waited for
    records = sorted(read_committed(settings, dlq), key=lambda r: (r.partition, r.offset))
    return (DeadLetterRecord(r) for r in records)


def read_letter(settings: Settings, dlq: str, partition: int, offset: int) -> DeadLetterRecord:
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
    return DeadLetterRecord(found)


def decoded_original(letter: DeadLetterRecord, decode: Any) -> dict[str, Any]:
    """The original value decoded with `decode` when it can be, else its text."""
    record = letter.record
    shown: dict[str, Any] = {"headers": {k: _text(v) for k, v in record.headers}}
    try:
        shown["value"] = decode(record.value, original_headers(record.headers))
    except Exception as exc:  # a dead letter is often undecodable: that is why it is here
        shown["value"] = _text(record.value)
        shown["decode_error"] = f"{type(exc).__name__}: {exc}"
    return shown


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


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None

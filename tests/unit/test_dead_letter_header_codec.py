"""The dead-letter headers are encoded as Spring Kafka writes them, and read
back in that form and in the textual form older dead letters carry."""

from __future__ import annotations

import struct

import pytest
from aiokafka.structs import ConsumerRecord
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, TIMESTAMP_NOT_AVAILABLE, Message

from ops.dead_letters import DeadLetterRecord
from ops.dead_letters.ledger import Ledger
from ops.dead_letters.letters import letter_of
from schemas import RecordError
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letter_headers import decode_number, shown
from streams.kafka.dead_letters import Origin, dead_letter, dead_letter_headers


def test_the_spring_headers_carry_springs_encodings() -> None:
    origin = Origin("migration.commands", 3, 42, 1_700_000_000_123, 0)

    headers = dict(dead_letter_headers(origin, RecordError("bad"), "T", 2, "app"))

    assert headers["kafka_dlt-original-topic"] == b"migration.commands"
    assert struct.unpack(">i", headers["kafka_dlt-original-partition"]) == (3,)
    assert struct.unpack(">q", headers["kafka_dlt-original-offset"]) == (42,)
    assert struct.unpack(">q", headers["kafka_dlt-original-timestamp"]) == (1_700_000_000_123,)
    assert headers["kafka_dlt-original-timestamp-type"] == b"CreateTime"
    assert headers["kafka_dlt-original-consumer-group"] == b"app"
    assert headers["kafka_dlt-exception-fqcn"] == b"schemas.exceptions.RecordError"
    assert headers["kafka_dlt-exception-cause-fqcn"] == b"schemas.exceptions.RecordError"
    assert headers["kafka_dlt-exception-message"] == b"bad"
    assert headers["kafka_dlt-exception-stacktrace"].endswith(b"RecordError: bad\n")
    assert (headers["migrator-attempts"], headers["migrator-failed-at"]) == (b"2", b"T")


def test_a_record_without_a_timestamp_says_so_as_spring_does() -> None:
    headers = dict(dead_letter_headers(Origin("t", 0, 0), ValueError("x"), "T"))

    assert struct.unpack(">q", headers["kafka_dlt-original-timestamp"]) == (-1,)
    assert headers["kafka_dlt-original-timestamp-type"] == b"NoTimestampType"
    assert "kafka_dlt-original-consumer-group" not in headers


def test_the_cause_is_the_root_of_the_raise_from_chain() -> None:
    try:
        try:
            raise KeyError("k")
        except KeyError as inner:
            raise RecordError("undecodable") from inner
    except RecordError as exc:
        headers = dict(dead_letter_headers(Origin("t", 0, 0), exc, "T"))

    assert headers["kafka_dlt-exception-cause-fqcn"] == b"builtins.KeyError"
    assert b"raise KeyError" in headers["kafka_dlt-exception-stacktrace"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (struct.pack(">i", 3), 3),
        (struct.pack(">i", 0), 0),
        (struct.pack(">q", 42), 42),
        (struct.pack(">q", -1), -1),
        (struct.pack(">q", 1_700_000_000_123), 1_700_000_000_123),
        (b"3", 3),  # older dead letters: decimal text
        (b"1234", 1234),  # 4 digits, not the int 0x31323334
        (b"12345678", 12_345_678),  # 8 digits, not a binary long
        (b"-1", -1),
        (b"", None),
        (None, None),
        (b"abc", None),
    ],
)
def test_numbers_are_read_in_both_forms(raw: bytes | None, expected: int | None) -> None:
    assert decode_number(raw) == expected


def test_an_older_textual_dead_letter_reads_as_before() -> None:
    older: list[tuple[str, bytes | None]] = [
        ("kafka_dlt-original-topic", b"migration.commands"),
        ("kafka_dlt-original-partition", b"2"),
        ("kafka_dlt-original-offset", b"12345678"),
        ("kafka_dlt-exception-fqcn", b"builtins.ValueError"),
        ("kafka_dlt-exception-message", b"bad"),
        ("kafka_dlt-attempts", b"3"),
        ("kafka_dlt-failed-at", b"2026-03-01T12:00:00.123+00:00"),
    ]

    summary = _letter(older).summary()

    assert (summary["original_partition"], summary["original_offset"]) == (2, 12_345_678)
    assert (summary["attempts"], summary["failed_at"]) == (3, "2026-03-01T12:00:00.123+00:00")
    assert summary["error_class"] == "builtins.ValueError"


def test_a_dead_letter_is_read_back_from_its_binary_headers() -> None:
    origin = Origin("migration.commands", 2, 12_345_678, 1_700_000_000_123, 1)
    headers: list[tuple[str, bytes | None]] = [
        *dead_letter_headers(origin, ValueError("bad"), "T", 1, "app")
    ]

    summary = _letter(headers).summary()
    people = shown(headers)

    assert (summary["original_partition"], summary["original_offset"]) == (2, 12_345_678)
    assert (summary["original_timestamp"], summary["consumer_group"]) == (1_700_000_000_123, "app")
    assert (people["kafka_dlt-original-offset"], people["kafka_dlt-original-partition"]) == (
        12_345_678,
        2,
    )
    assert people["kafka_dlt-original-timestamp-type"] == "LogAppendTime"


def test_both_clients_records_give_their_timestamp_and_its_type() -> None:
    message = Message(
        topic="t", partition=1, offset=5, key=b"k", value=b"v", headers=[],
        timestamp=(TIMESTAMP_LOG_APPEND_TIME, 1_700_000_000_999),
    )  # fmt: skip
    untimed = Message(topic="t", partition=1, offset=5, timestamp=(TIMESTAMP_NOT_AVAILABLE, 0))
    aio = ConsumerRecord(
        "t", 1, 5, 1_700_000_000_999, 0, b"k", b"v", None, 1, 1, [("a", b"b")]
    )  # fmt: skip

    from_confluent = dict(dead_letter(Consumed.of(message), ValueError("x"), "t.dlq").headers)
    from_aiokafka = dict(dead_letter(aio, ValueError("x"), "t.dlq").headers)

    assert (Consumed.of(untimed).timestamp, Consumed.of(untimed).timestamp_type) == (-1, -1)
    assert from_confluent["kafka_dlt-original-timestamp-type"] == b"LogAppendTime"
    assert from_aiokafka["kafka_dlt-original-timestamp-type"] == b"CreateTime"
    for headers in (from_confluent, from_aiokafka):
        assert struct.unpack(">q", headers["kafka_dlt-original-timestamp"] or b"") == (
            1_700_000_000_999,
        )


def _letter(headers: list[tuple[str, bytes | None]]) -> DeadLetterRecord:
    return letter_of(Consumed("migration.commands.dlq", 0, 7, b"k", b"v", headers), Ledger())

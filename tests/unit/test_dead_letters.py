"""Dead letters keep the original record; their headers say what failed, where
the record came from, when, and after how many attempts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas import RecordError
from streams.kafka.dead_letters import (
    ATTEMPTS,
    EXCEPTION_FQCN,
    FAILED_AT,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
    REDRIVE_ATTEMPTS,
    Origin,
    attempts_of,
    dead_letter,
    dead_letter_headers,
)


def test_headers_name_origin_error_attempts_and_time() -> None:
    headers = dict(
        dead_letter_headers(Origin("migration.commands", 3, 42), RecordError("bad"), "T", 2)
    )

    assert headers == {
        "kafka_dlt-original-topic": b"migration.commands",
        "kafka_dlt-original-partition": b"3",
        "kafka_dlt-original-offset": b"42",
        "kafka_dlt-exception-fqcn": b"schemas.exceptions.RecordError",
        "kafka_dlt-exception-message": b"bad",
        "kafka_dlt-attempts": b"2",
        "kafka_dlt-failed-at": b"T",
    }


def test_a_long_message_is_cut() -> None:
    headers = dict(dead_letter_headers(Origin("t", 0, 0), ValueError("x" * 5000), "T"))

    assert len(headers["kafka_dlt-exception-message"]) == 2000


@dataclass(frozen=True)
class _Record:
    topic: str = "migration.commands"
    partition: int = 3
    offset: int = 42
    key: bytes | None = b"m-1"
    value: bytes | None = b"\x00bad"
    headers: list[tuple[str, bytes | None]] = field(default_factory=lambda: [("trace", b"t1")])


def test_a_dead_letter_keeps_the_original_record_and_appends_the_error_headers() -> None:
    letter = dead_letter(_Record(), RecordError("bad"), "migration.commands.dlq")

    assert (letter.topic, letter.key, letter.value) == (
        "migration.commands.dlq",
        b"m-1",
        b"\x00bad",
    )
    assert letter.headers[0] == ("trace", b"t1")
    added = dict(letter.headers[1:])
    assert added[ORIGINAL_TOPIC] == b"migration.commands"
    assert added[ORIGINAL_PARTITION] == b"3"
    assert added[ORIGINAL_OFFSET] == b"42"
    assert added[EXCEPTION_FQCN] == b"schemas.exceptions.RecordError"
    assert added[ATTEMPTS] == b"1"


def test_a_dead_letter_says_when_in_iso_8601_utc_with_milliseconds() -> None:
    before = datetime.now(UTC)

    letter = dead_letter(_Record(), ValueError("x"), "t.dlq")

    failed_at = dict(letter.headers)[FAILED_AT]
    assert failed_at is not None
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", failed_at)
    assert datetime.fromisoformat(failed_at.decode()) >= before.replace(microsecond=0)


def test_a_redriven_record_that_fails_again_counts_one_attempt_more() -> None:
    redriven = _Record(headers=[(REDRIVE_ATTEMPTS, b"2")])

    letter = dead_letter(redriven, ValueError("again"), "t.dlq")

    assert attempts_of(letter.headers) == 3

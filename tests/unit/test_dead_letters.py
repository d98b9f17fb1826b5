"""Dead letters keep the original record; their headers say what failed, where
the record came from, when, and after how many attempts, each once and true:
headers of the original that bear our names are kept under another name."""

from __future__ import annotations

import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas import RecordError
from streams.kafka.dead_letter_headers import (
    ATTEMPTS,
    EXCEPTION_FQCN,
    FAILED_AT,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
    REDRIVE_ATTEMPTS,
    REDRIVEN_FROM,
    Header,
    decode_number,
)
from streams.kafka.dead_letters import Origin, dead_letter, dead_letter_headers

FORGED: list[Header] = [
    ("migrator-attempts", b"999"),
    ("kafka_dlt-attempts", b"999"),
    ("kafka_dlt-original-offset", struct.pack(">q", 123_456)),
    ("kafka_dlt-original-partition", b"7"),
    ("kafka_dlt-original-topic", b"elsewhere"),
    ("migrator-failed-at", b"1999-01-01T00:00:00.000+00:00"),
]


@dataclass(frozen=True)
class _Record:
    topic: str = "migration.commands"
    partition: int = 3
    offset: int = 42
    timestamp: int | None = 1_700_000_000_123
    timestamp_type: int | None = 0
    key: bytes | None = b"m-1"
    value: bytes | None = b"\x00bad"
    headers: list[Header] = field(default_factory=lambda: [("trace", b"t1")])


def test_a_long_message_is_cut() -> None:
    headers = dict(dead_letter_headers(Origin("t", 0, 0), ValueError("x" * 5000), "T"))

    assert len(headers["kafka_dlt-exception-message"]) == 2000


def test_a_dead_letter_keeps_the_original_record_and_appends_the_error_headers() -> None:
    letter = dead_letter(_Record(), RecordError("bad"), "migration.commands.dlq", "app")

    assert (letter.topic, letter.key, letter.value) == (
        "migration.commands.dlq",
        b"m-1",
        b"\x00bad",
    )
    assert letter.headers[0] == ("trace", b"t1")
    added = dict(letter.headers[1:])
    assert added[ORIGINAL_TOPIC] == b"migration.commands"
    assert decode_number(added[ORIGINAL_PARTITION]) == 3
    assert decode_number(added[ORIGINAL_OFFSET]) == 42
    assert added[EXCEPTION_FQCN] == b"schemas.exceptions.RecordError"
    assert added[ATTEMPTS] == b"1"


def test_a_dead_letter_says_when_in_iso_8601_utc_with_milliseconds() -> None:
    before = datetime.now(UTC)

    letter = dead_letter(_Record(), ValueError("x"), "t.dlq")

    failed_at = dict(letter.headers)[FAILED_AT]
    assert failed_at is not None
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", failed_at)
    assert datetime.fromisoformat(failed_at.decode()) >= before.replace(microsecond=0)


def test_imitations_of_our_headers_are_kept_under_another_name_and_never_counted() -> None:
    forged = _Record(headers=[("trace", b"t1"), *FORGED, ("migrator-redrive-attempts", b"999")])

    letter = dead_letter(forged, ValueError("x"), "t.dlq")

    names = Counter(k for k, _ in letter.headers)
    ours = {k: n for k, n in names.items() if k.startswith(("kafka_dlt-", "migrator-attempts"))}
    assert set(ours.values()) == {1}  # each of ours once: the imitations were renamed
    headers = dict(letter.headers)
    assert decode_number(headers[ORIGINAL_OFFSET]) == 42
    assert decode_number(headers[ORIGINAL_PARTITION]) == 3
    assert headers[ORIGINAL_TOPIC] == b"migration.commands"
    assert headers[ATTEMPTS] == b"1"
    assert REDRIVE_ATTEMPTS not in headers  # without its redriven-from it is no redrive
    assert headers["migrator-original-header-migrator-attempts"] == b"999"
    assert headers["migrator-original-header-kafka_dlt-original-offset"] == struct.pack(
        ">q", 123_456
    )
    assert headers["migrator-original-header-migrator-redrive-attempts"] == b"999"
    assert letter.headers[0] == ("trace", b"t1")  # the rest as they were, in order


def test_a_redriven_record_that_fails_again_counts_one_attempt_more() -> None:
    redriven = _Record(headers=[(REDRIVE_ATTEMPTS, b"2"), (REDRIVEN_FROM, b"t.dlq/0/5")])

    letter = dead_letter(redriven, ValueError("again"), "t.dlq")

    headers = dict(letter.headers)
    assert headers[ATTEMPTS] == b"3"
    assert headers[REDRIVEN_FROM] == b"t.dlq/0/5"  # which dead letter it was


def test_only_the_last_redrive_pair_counts_an_earlier_one_is_an_imitation() -> None:
    incoming: list[Header] = [
        (REDRIVE_ATTEMPTS, b"999"),
        (REDRIVEN_FROM, b"x.dlq/0/1"),
        (REDRIVE_ATTEMPTS, b"1"),
        (REDRIVEN_FROM, b"t.dlq/0/5"),
    ]

    letter = dead_letter(_Record(headers=incoming), ValueError("again"), "t.dlq")

    headers = dict(letter.headers)
    assert Counter(k for k, _ in letter.headers)[REDRIVE_ATTEMPTS] == 1
    assert (headers[ATTEMPTS], headers[REDRIVEN_FROM]) == (b"2", b"t.dlq/0/5")
    assert headers["migrator-original-header-migrator-redrive-attempts"] == b"999"

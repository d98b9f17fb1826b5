"""Dead letters: the one builder every process uses, and their headers, named
the way Spring Kafka names them (`kafka_dlt-*`).

The original key and bytes travel unchanged; the original headers are kept
and these are appended: what went wrong, where the record came from, when
(ISO-8601 UTC with milliseconds), after how many attempts. They never carry
a secret.

A redriven record (sent back to its original topic by `migrator dlq redrive`)
carries its original headers plus `migrator-redrive-*` ones: how often it had
failed, and which dead letter it was. If it fails again, its new dead letter
counts one attempt more (`attempts_after`), so redrive can refuse a record
that keeps failing instead of looping without end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

ORIGINAL_TOPIC = "kafka_dlt-original-topic"
ORIGINAL_PARTITION = "kafka_dlt-original-partition"
ORIGINAL_OFFSET = "kafka_dlt-original-offset"
EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
ATTEMPTS = "kafka_dlt-attempts"
FAILED_AT = "kafka_dlt-failed-at"
DLT_PREFIX = "kafka_dlt-"

REDRIVE_ATTEMPTS = "migrator-redrive-attempts"  # failures before this redrive
REDRIVEN_FROM = "migrator-redriven-from"  # the dead letter: "<dlq topic>/<partition>/<offset>"
REDRIVE_PREFIX = "migrator-redrive"

Header = tuple[str, bytes | None]

MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Origin:
    topic: str
    partition: int
    offset: int


class Record(Protocol):
    """A consumed record, as either client library hands it over."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[Header]: ...


@dataclass(frozen=True)
class DeadLetter:
    """A record to write to a dead-letter topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[Header]


def failed_at_now() -> str:
    """Now, as dead letters say when they failed: `2026-03-01T12:00:00.123+00:00`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dead_letter(record: Record, error: BaseException, dlq: str) -> DeadLetter:
    """`record`, given up on because of `error`, as a dead letter for topic `dlq`;
    it counts one attempt more than a redriven record had failed before."""
    origin = Origin(record.topic, record.partition, record.offset)
    attempts = attempts_after(record.headers)
    added = dead_letter_headers(origin, error, failed_at_now(), attempts)
    return DeadLetter(dlq, record.key, record.value, [*record.headers, *added])


def dead_letter_headers(
    origin: Origin, error: BaseException, failed_at: str, attempts: int = 1
) -> list[tuple[str, bytes]]:
    """Headers for a record that is given up on."""
    cls = type(error)
    return [
        (ORIGINAL_TOPIC, origin.topic.encode()),
        (ORIGINAL_PARTITION, str(origin.partition).encode()),
        (ORIGINAL_OFFSET, str(origin.offset).encode()),
        (EXCEPTION_FQCN, f"{cls.__module__}.{cls.__qualname__}".encode()),
        (EXCEPTION_MESSAGE, str(error)[:MAX_MESSAGE_CHARS].encode()),
        (ATTEMPTS, str(attempts).encode()),
        (FAILED_AT, failed_at.encode()),
    ]


def header(headers: Sequence[Header], name: str) -> str | None:
    """The last value of header `name` (as Kafka clients read headers), or None."""
    found = None
    for key, value in headers:
        if key == name and value is not None:
            found = value.decode(errors="replace")
    return found


def attempts_after(incoming: Sequence[Header]) -> int:
    """The attempt count for a dead letter of a record with these headers:
    one more than a redriven record had failed before, else 1."""
    return _int(header(incoming, REDRIVE_ATTEMPTS)) + 1


def attempts_of(headers: Sequence[Header]) -> int:
    """How many times a dead letter's record has failed: its attempts header,
    and at least one more than it had failed before it was redriven."""
    return max(_int(header(headers, ATTEMPTS)) or 1, attempts_after(headers))


def original_headers(headers: Sequence[Header]) -> list[Header]:
    """A dead letter's headers without the ones dead-lettering and redrive added."""
    return [(k, v) for k, v in headers if not k.startswith((DLT_PREFIX, REDRIVE_PREFIX))]


def redrive_headers(dead: Sequence[Header], dlq: Origin) -> list[Header]:
    """Headers for sending the dead letter at `dlq` back to its topic."""
    return [
        *original_headers(dead),
        (REDRIVE_ATTEMPTS, str(attempts_of(dead)).encode()),
        (REDRIVEN_FROM, f"{dlq.topic}/{dlq.partition}/{dlq.offset}".encode()),
    ]


def _int(text: str | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0

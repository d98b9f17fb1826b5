"""Dead-letter headers, named the way Spring Kafka names them (`kafka_dlt-*`).

The original bytes travel unchanged as the record's value; these headers say
what went wrong and where the record came from. They never carry a secret.

A redriven record (sent back to its original topic by `migrator dlq redrive`)
carries its original headers plus `migrator-redrive-*` ones: how often it had
failed, and which dead letter it was. If it fails again, its new dead letter
counts one attempt more (`attempts_after`), so redrive can refuse a record
that keeps failing instead of looping without end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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

"""Dead letters: the one builder every process uses, and the headers a
redrive sends back. The names and encodings are in `dead_letter_headers`.

The original key and bytes travel unchanged, and so do the original headers,
but one kind: a header of the original record that bears one of our names
(any `kafka_dlt-*`, or `migrator-attempts`, `-failed-at`, `-redrive-attempts`,
`-redriven-from`) is kept under `migrator-original-header-<name>` instead. So
a dead letter carries each of our headers once, with its true value: an
imitation (a forged `migrator-attempts: 999`, a `kafka_dlt-original-offset`
copied from another system's dead letter) can neither shadow it nor raise an
attempt count, and is still there to see. A redrive leaves them so named.

The one exception is a redriven record's own pair, `migrator-redrive-attempts`
and `migrator-redriven-from` (the last of each, when it has both): redrive
adds them last, and the dead letter keeps them to say which dead letter the
record was redriven from. Its `migrator-attempts` counts one more than the
pair says; this process cannot check the pair, so `ops.dead_letters` counts
a redriven record's earlier failures from the redrive ledger instead, where
redrive wrote them, and a redrive that is not in the ledger counts none.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from streams.kafka.dead_letter_headers import (
    ATTEMPTS,
    DLT_PREFIX,
    EXCEPTION_CAUSE_FQCN,
    EXCEPTION_FQCN,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    FAILED_AT,
    LEGACY_ATTEMPTS,
    LEGACY_FAILED_AT,
    NO_TIMESTAMP,
    ORIGINAL_CONSUMER_GROUP,
    ORIGINAL_HEADER_PREFIX,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TIMESTAMP,
    ORIGINAL_TIMESTAMP_TYPE,
    ORIGINAL_TOPIC,
    OURS,
    REDRIVE_ATTEMPTS,
    REDRIVEN_FROM,
    Header,
    decode_count,
    header,
    int32,
    int64,
    last,
    timestamp_type_name,
)

MAX_MESSAGE_CHARS = 2000
MAX_STACKTRACE_CHARS = 8000
REDRIVE_PAIR = (REDRIVE_ATTEMPTS, REDRIVEN_FROM)


@dataclass(frozen=True)
class Origin:
    """Where a record was: its position, and its timestamp (epoch ms) and the
    timestamp's type as Kafka numbers it (-1 none, 0 CreateTime, 1 LogAppendTime)."""

    topic: str
    partition: int
    offset: int
    timestamp: int = NO_TIMESTAMP
    timestamp_type: int = NO_TIMESTAMP


class Record(Protocol):
    """A consumed record, as either client library hands it over."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def timestamp_type(self) -> int | None: ...
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


def dead_letter(
    record: Record, error: BaseException, dlq: str, group: str | None = None
) -> DeadLetter:
    """`record`, given up on by consumer `group` because of `error`, as a dead
    letter for topic `dlq`; it counts one attempt more than a redriven record
    says it had failed before."""
    origin = origin_of(record)
    attempts = 1 + claimed_failures(record.headers)
    added = dead_letter_headers(origin, error, failed_at_now(), attempts, group)
    return DeadLetter(dlq, record.key, record.value, [*carried(record.headers), *added])


def origin_of(record: Record) -> Origin:
    timestamp = NO_TIMESTAMP if record.timestamp is None else record.timestamp
    kind = NO_TIMESTAMP if record.timestamp_type is None else record.timestamp_type
    return Origin(record.topic, record.partition, record.offset, timestamp, kind)


def dead_letter_headers(
    origin: Origin,
    error: BaseException,
    failed_at: str,
    attempts: int = 1,
    group: str | None = None,
) -> list[tuple[str, bytes]]:
    """The headers that say where a record given up on came from, why, when
    and after how many attempts."""
    return [
        *origin_headers(origin, group),
        *exception_headers(error),
        (ATTEMPTS, str(attempts).encode()),
        (FAILED_AT, failed_at.encode()),
    ]


def origin_headers(origin: Origin, group: str | None) -> list[tuple[str, bytes]]:
    found = [
        (ORIGINAL_TOPIC, origin.topic.encode()),
        (ORIGINAL_PARTITION, int32(origin.partition)),
        (ORIGINAL_OFFSET, int64(origin.offset)),
        (ORIGINAL_TIMESTAMP, int64(origin.timestamp)),
        (ORIGINAL_TIMESTAMP_TYPE, timestamp_type_name(origin.timestamp_type).encode()),
    ]
    return found if group is None else [*found, (ORIGINAL_CONSUMER_GROUP, group.encode())]


def exception_headers(error: BaseException) -> list[tuple[str, bytes]]:
    stack = "".join(traceback.format_exception(error))[-MAX_STACKTRACE_CHARS:]
    return [
        (EXCEPTION_FQCN, _fqcn(error).encode()),
        (EXCEPTION_CAUSE_FQCN, _fqcn(_root_cause(error)).encode()),
        (EXCEPTION_MESSAGE, str(error)[:MAX_MESSAGE_CHARS].encode()),
        (EXCEPTION_STACKTRACE, stack.encode()),
    ]


def imitates(name: str) -> bool:
    """Whether a header of an original record bears one of our names."""
    return name.startswith(DLT_PREFIX) or name in OURS


def carried(incoming: Sequence[Header]) -> list[Header]:
    """An original record's headers as its dead letter keeps them: each that
    bears one of our names under `migrator-original-header-<name>`, but for a
    redriven record's redrive pair."""
    pair = _redrive_pair(incoming)
    return [
        (key, value) if not imitates(key) or i in pair else (ORIGINAL_HEADER_PREFIX + key, value)
        for i, (key, value) in enumerate(incoming)
    ]


def claimed_failures(incoming: Sequence[Header]) -> int:
    """How often a redriven record says it had failed (its redrive pair), else 0."""
    if not _redrive_pair(incoming):
        return 0
    return decode_count(last(incoming, REDRIVE_ATTEMPTS))


def written_attempts(headers: Sequence[Header]) -> int:
    """A dead letter's own attempt count (at least 1), in its current or older name."""
    raw = last(headers, ATTEMPTS)
    return max(1, decode_count(raw if raw is not None else last(headers, LEGACY_ATTEMPTS)))


def failed_at(headers: Sequence[Header]) -> str | None:
    """When a dead letter's record failed, in its current or older name."""
    return header(headers, FAILED_AT) or header(headers, LEGACY_FAILED_AT)


def redriven_from(headers: Sequence[Header]) -> tuple[str, int, int] | None:
    """The dead letter a redriven record came from: (topic, partition, offset)."""
    parts = (header(headers, REDRIVEN_FROM) or "").rsplit("/", 2)
    if len(parts) != 3 or not (parts[0] and parts[1].isdigit() and parts[2].isdigit()):
        return None
    return parts[0], int(parts[1]), int(parts[2])


def original_headers(headers: Sequence[Header]) -> list[Header]:
    """A dead letter's headers without the ones dead-lettering and redrive added."""
    return [(k, v) for k, v in headers if not (k.startswith(DLT_PREFIX) or k in OURS)]


def redrive_headers(dead: Sequence[Header], dlq: Origin, attempts: int) -> list[Header]:
    """Headers for sending the dead letter at `dlq` back to its topic, its
    record having failed `attempts` times."""
    return [
        *original_headers(dead),
        (REDRIVE_ATTEMPTS, str(attempts).encode()),
        (REDRIVEN_FROM, f"{dlq.topic}/{dlq.partition}/{dlq.offset}".encode()),
    ]


def _redrive_pair(incoming: Sequence[Header]) -> set[int]:
    """The indexes of the last redrive header of each name, when both are there."""
    found = {key: i for i, (key, _) in enumerate(incoming) if key in REDRIVE_PAIR}
    return set(found.values()) if len(found) == len(REDRIVE_PAIR) else set()


def _fqcn(error: BaseException) -> str:
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"


def _root_cause(error: BaseException) -> BaseException:
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    return error

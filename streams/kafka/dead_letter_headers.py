"""The dead-letter headers: their names and how each value is encoded and read.

Spring Kafka's own (spring-kafka `KafkaHeaders` and the dead-letter recoverer
that fills them), encoded as Spring writes them so that Spring's tooling
reads ours:

    kafka_dlt-original-topic           UTF-8
    kafka_dlt-original-partition       4-byte big-endian int
    kafka_dlt-original-offset          8-byte big-endian long
    kafka_dlt-original-timestamp       8-byte big-endian long, epoch ms (-1: none)
    kafka_dlt-original-timestamp-type  UTF-8: CreateTime, LogAppendTime or
                                       NoTimestampType (Kafka's TimestampType names)
    kafka_dlt-original-consumer-group  UTF-8: the group that gave up on it
    kafka_dlt-exception-fqcn           UTF-8: `module.QualifiedName` of the error
    kafka_dlt-exception-cause-fqcn     UTF-8: the same of its root cause (`raise from`)
    kafka_dlt-exception-message        UTF-8, at most 2000 characters
    kafka_dlt-exception-stacktrace     UTF-8, the Python traceback (its last 8000 characters)

Ours, as text:

    migrator-attempts                  decimal: failures of the record, this one included
    migrator-failed-at                 ISO-8601 UTC with milliseconds
    migrator-redrive-attempts          decimal: on a redriven record, its failures so far
    migrator-redriven-from             on a redriven record: `<dlq>/<partition>/<offset>`
    migrator-original-header-<name>    a header of the original record that bore one
                                       of the names above (see `dead_letters`)

Older dead letters, still in users' DLQs, carry the partition and offset as
decimal text, and the attempts and time as `kafka_dlt-attempts` and
`kafka_dlt-failed-at`; the readers here take both forms. A value is read as
text when it is all ASCII digits (a `-` may lead), else as a 4- or 8-byte
big-endian int. That never misreads: the binary form of a real partition
(below 2^24), offset or epoch-ms timestamp (below 2^56) begins with a zero
byte, and -1 with 0xff; neither is a digit.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

ORIGINAL_TOPIC = "kafka_dlt-original-topic"
ORIGINAL_PARTITION = "kafka_dlt-original-partition"
ORIGINAL_OFFSET = "kafka_dlt-original-offset"
ORIGINAL_TIMESTAMP = "kafka_dlt-original-timestamp"
ORIGINAL_TIMESTAMP_TYPE = "kafka_dlt-original-timestamp-type"
ORIGINAL_CONSUMER_GROUP = "kafka_dlt-original-consumer-group"
EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
EXCEPTION_CAUSE_FQCN = "kafka_dlt-exception-cause-fqcn"
EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
EXCEPTION_STACKTRACE = "kafka_dlt-exception-stacktrace"
DLT_PREFIX = "kafka_dlt-"  # Spring's: every name that starts so is a dead-letter header

ATTEMPTS = "migrator-attempts"
FAILED_AT = "migrator-failed-at"
REDRIVE_ATTEMPTS = "migrator-redrive-attempts"
REDRIVEN_FROM = "migrator-redriven-from"
ORIGINAL_HEADER_PREFIX = "migrator-original-header-"

LEGACY_ATTEMPTS = "kafka_dlt-attempts"  # older dead letters: decimal text
LEGACY_FAILED_AT = "kafka_dlt-failed-at"  # older dead letters: ISO-8601 text

OURS = frozenset({ATTEMPTS, FAILED_AT, REDRIVE_ATTEMPTS, REDRIVEN_FROM})
BINARY = frozenset({ORIGINAL_PARTITION, ORIGINAL_OFFSET, ORIGINAL_TIMESTAMP})

NO_TIMESTAMP = -1
TIMESTAMP_TYPES = {-1: "NoTimestampType", 0: "CreateTime", 1: "LogAppendTime"}  # by Kafka id

Header = tuple[str, bytes | None]

_DECIMAL = re.compile(rb"-?[0-9]+")


def int32(number: int) -> bytes:
    return struct.pack(">i", number)


def int64(number: int) -> bytes:
    return struct.pack(">q", number)


def timestamp_type_name(kind: int | None) -> str:
    """Kafka's name of a timestamp type given by its id (-1, 0, 1)."""
    return TIMESTAMP_TYPES.get(-1 if kind is None else kind, TIMESTAMP_TYPES[-1])


def decode_number(raw: bytes | None) -> int | None:
    """A number as Spring writes it (4 or 8 bytes, big-endian) or as older
    dead letters wrote it (decimal text); None when it is neither."""
    if not raw:
        return None
    if _DECIMAL.fullmatch(raw):
        return int(raw)
    if len(raw) == 4:
        return int(struct.unpack(">i", raw)[0])
    if len(raw) == 8:
        return int(struct.unpack(">q", raw)[0])
    return None


def decode_count(raw: bytes | None) -> int:
    """One of our decimal counts; 0 when missing or not a count."""
    if raw is None or not raw.isdigit():
        return 0
    return int(raw)


def last(headers: Sequence[Header], name: str) -> bytes | None:
    """The last value of header `name` (as Kafka clients read headers), or None."""
    found = None
    for key, value in headers:
        if key == name and value is not None:
            found = value
    return found


def header(headers: Sequence[Header], name: str) -> str | None:
    """The last value of header `name` as text, or None."""
    raw = last(headers, name)
    return None if raw is None else raw.decode(errors="replace")


def number(headers: Sequence[Header], name: str) -> int | None:
    """The last value of header `name` as a number, in either form."""
    return decode_number(last(headers, name))


def shown(headers: Sequence[Header]) -> dict[str, str | int | None]:
    """Every header for people: the binary numbers as numbers, the rest as text."""
    return {key: _shown(key, value) for key, value in headers}


def _shown(key: str, value: bytes | None) -> str | int | None:
    if value is None:
        return None
    if key in BINARY and (found := decode_number(value)) is not None:
        return found
    return value.decode(errors="replace")

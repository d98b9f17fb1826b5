"""Dead-letter headers, named the way Spring Kafka names them (`kafka_dlt-*`).

The original bytes travel unchanged as the record's value; these headers say
what went wrong and where the record came from. They never carry a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

ORIGINAL_TOPIC = "kafka_dlt-original-topic"
ORIGINAL_PARTITION = "kafka_dlt-original-partition"
ORIGINAL_OFFSET = "kafka_dlt-original-offset"
EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
ATTEMPTS = "kafka_dlt-attempts"
FAILED_AT = "kafka_dlt-failed-at"

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

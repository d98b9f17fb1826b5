"""Dead-letter headers say what failed and where the record came from."""

from __future__ import annotations

from schemas import RecordError
from streams.kafka.dead_letters import Origin, dead_letter_headers


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

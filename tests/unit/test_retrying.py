"""Transient Kafka errors are retried, bounded; others propagate at once."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka.retrying import is_transient, transient_retry


def failing(times: int, code: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise KafkaException(KafkaError(code))
        return "ok"

    return calls, call


def test_a_leader_moving_is_retried_until_it_works() -> None:
    calls, call = failing(3, KafkaError.NOT_LEADER_FOR_PARTITION)

    assert transient_retry(call, seconds=10) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 4


def test_a_permanent_error_is_not_retried() -> None:
    calls, call = failing(1, KafkaError.TOPIC_AUTHORIZATION_FAILED)

    with pytest.raises(KafkaException):
        transient_retry(call, seconds=10)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_retries_stop_after_their_bound() -> None:
    calls, call = failing(10_000, KafkaError.LEADER_NOT_AVAILABLE)

    with pytest.raises(KafkaException):
        transient_retry(call, seconds=0.5)  # type: ignore[arg-type]
    assert 1 < len(calls) < 10_000


def test_only_kafka_errors_count() -> None:
    assert not is_transient(ValueError("x"))
    assert is_transient(KafkaException(KafkaError(KafkaError.NOT_COORDINATOR)))

"""Retry of transient Kafka errors (a leader moving, a coordinator loading),
with exponential backoff and jitter, bounded; then the error propagates."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

T = TypeVar("T")
TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError.REQUEST_TIMED_OUT,
    }
)


def is_transient(exc: BaseException) -> bool:
    if not isinstance(exc, KafkaException) or not exc.args:
        return False
    error = exc.args[0]
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in TRANSIENT)


def transient_retry(call: Callable[[], T], seconds: float = 60.0) -> T:
    """`call()`, retried on transient Kafka errors for up to `seconds`."""
    retrying = retry(
        retry=retry_if_exception(is_transient),
        wait=wait_random_exponential(multiplier=0.1, max=5),
        stop=stop_after_delay(seconds),
        reraise=True,
    )
    return retrying(call)()

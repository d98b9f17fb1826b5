"""The transactional calls' guard: which errors are tried again, which mean a
newer instance took over, and the watchdog that ends a call that never returns."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka.transaction import Transactions, fenced, retriable
from streams.kafka.watchdog import Watchdog


def error(code: int, **flags: bool) -> KafkaException:
    return KafkaException(KafkaError(code, "test", **flags))


def test_a_timed_out_call_is_tried_again_but_not_an_abortable_or_fatal_one() -> None:
    assert retriable(error(KafkaError._TIMED_OUT, retriable=True))
    assert not retriable(error(KafkaError._TIMED_OUT, retriable=True, txn_requires_abort=True))
    assert not retriable(error(KafkaError._FENCED, retriable=True, fatal=True))
    assert not retriable(error(KafkaError._TIMED_OUT))
    assert not retriable(RuntimeError("not Kafka's"))


def test_fencing_is_told_apart_from_other_fatal_errors() -> None:
    assert fenced(error(KafkaError._FENCED, fatal=True))
    assert fenced(error(KafkaError.PRODUCER_FENCED, fatal=True))
    assert fenced(error(KafkaError.FENCED_INSTANCE_ID, fatal=True))
    assert not fenced(error(KafkaError.INVALID_TXN_STATE, fatal=True))


class FlakyProducer:
    """Answers `commit_transaction` with retriable timeouts, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def commit_transaction(self, timeout: float) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise error(KafkaError._TIMED_OUT, retriable=True)


def test_retriable_errors_are_retried_within_patience_then_raised() -> None:
    patient = FlakyProducer(failures=2)
    Transactions(patient, 1.0, patience=30.0).commit()  # type: ignore[arg-type]
    assert patient.calls == 3

    hopeless = FlakyProducer(failures=10**6)
    with pytest.raises(KafkaException):
        Transactions(hopeless, 1.0, patience=0.5).commit()  # type: ignore[arg-type]
    assert hopeless.calls >= 1


def test_the_watchdog_reports_a_call_that_overruns_its_timeout_and_not_one_that_returns() -> None:
    overruns: list[str] = []
    reported = threading.Event()

    def record(what: str, seconds: float) -> None:
        overruns.append(what)
        reported.set()

    dog = Watchdog(grace=0.2, on_overrun=record)
    with dog.watching("quick", timeout=5.0):
        pass
    with dog.watching("stuck", timeout=0.1):
        assert reported.wait(10)  # the call has not returned: the watchdog speaks first
    time.sleep(1.0)  # the watchdog's next looks: the returned call is not reported
    assert overruns == ["stuck"]

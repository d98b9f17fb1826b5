"""The circuit breaker, the retry classification and the offset tracker."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from streams.dataplane.breaker import BreakerState, CircuitBreaker
from streams.dataplane.database import is_transient
from streams.dataplane.errors import BreakerOpen, SpecError, TransientError, ValidationFailed
from streams.dataplane.offsets import OffsetTracker
from streams.dataplane.reconcile import mismatches
from streams.dataplane.validate import report, score_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_at_the_threshold_and_half_opens_after_the_cool_down() -> None:
    clock, seen = Clock(), []
    breaker = CircuitBreaker(3, 10.0, clock, seen.append)
    for _ in range(2):
        breaker.failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now = 9.9
    assert not breaker.allow() and breaker.retry_in() > 0
    clock.now = 10.0
    assert breaker.allow()  # the one trial
    assert not breaker.allow()  # nobody else meanwhile
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_trial_opens_the_breaker_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failure()
    clock.now = 5.0
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and breaker.retry_in() == 5.0


def test_a_trial_that_never_reports_holds_the_others_back_no_longer_than_the_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failure()
    clock.now = 5.0
    assert breaker.allow()  # a trial, lost: it never says success or failure
    clock.now = 9.9
    assert not breaker.allow() and breaker.retry_in() > 0
    clock.now = 10.0
    assert breaker.allow()  # the next caller is a trial of its own
    breaker.success()
    assert breaker.state is BreakerState.CLOSED


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(2, 5.0, Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state is BreakerState.CLOSED


def test_transient_errors_are_told_apart_from_the_rest() -> None:
    assert is_transient(psycopg.OperationalError("connection refused"))
    assert is_transient(psycopg.errors.SerializationFailure())
    assert is_transient(psycopg.errors.DeadlockDetected())
    assert not is_transient(psycopg.errors.QueryCanceled())  # a timeout would time out again
    assert is_transient(PoolTimeout("no connection"))
    assert is_transient(BreakerOpen("open", "target", 1.0))
    assert not is_transient(psycopg.errors.UndefinedTable())
    assert not is_transient(psycopg.errors.UniqueViolation())
    assert not is_transient(SpecError("no such column"))


def test_the_error_tree_carries_the_retry_decision() -> None:
    assert TransientError("x").retriable and BreakerOpen("x", "c", 1).retriable
    assert not SpecError("x").retriable and not ValidationFailed("x").retriable


def test_offsets_commit_up_to_the_lowest_task_still_running() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.add(0, offset)
    tracker.done(0, 11)
    assert tracker.committable() == {0: 10}
    tracker.done(0, 10)
    assert tracker.committable() == {0: 12}
    tracker.mark_committed({0: 12})
    assert tracker.committable() == {}
    tracker.done(0, 12)
    assert tracker.committable() == {0: 13}


def test_a_revoked_partition_is_forgotten() -> None:
    tracker = OffsetTracker()
    tracker.add(1, 5)
    tracker.forget({1})
    assert tracker.committable() == {}


def test_scores_and_the_failure_report() -> None:
    assert score_of(0, 0) == 1.0 and score_of(25, 100) == 0.75
    results = {
        "not_null(email)": {"failed": 2, "total": 10, "score": 0.8, "samples": ["3", "7"]},
        "unique(id)": {"failed": 0, "total": 10, "score": 1.0, "samples": []},
    }
    text = report(results, 0.8, 0.9)
    assert text.startswith("validation score 0.8000 is below the minimum 0.9")
    assert "not_null(email): 2 of 10 rows fail" in text and "keys 3, 7" in text
    assert "unique(id)" not in text


def test_reconciliation_names_each_mismatch() -> None:
    same = {
        "source_rows": 5,
        "copied_rows": 5,
        "target_rows": 5,
        "source_checksum": "1",
        "target_checksum": "1",
    }
    assert mismatches(same) == []
    assert mismatches({**same, "target_checksum": "2"}) == [
        "target checksum differs from the source's"
    ]
    assert mismatches({**same, "target_rows": 4, "target_checksum": "2"}) == [
        "target has 4 of 5 rows"  # the checksum cannot agree then: not said twice
    ]
    # chunks that do not add up to the rows counted when the copy was planned
    assert mismatches({**same, "copied_rows": 6, "target_rows": 6}) == [
        "the source had 5 rows in the snapshot, its chunks 6"
    ]

"""How long a batch keeps trying: a database away is retried for the time
budget, a lost try a few times, and an open breaker delays tries without
ever ending them (a fake clock: nothing waits)."""

from __future__ import annotations

import asyncio

import pytest

from config import Settings
from streams.dataplane.breaker import CircuitBreaker
from streams.dataplane.errors import BreakerOpen, TransientError
from streams.dataplane.retry import RetryBudget, retrying, stopping_on

AWAY = TransientError(
    "warehouse: database is not accepting connections (recovering)", "warehouse", unavailable=True
)
DEADLOCK = TransientError("warehouse: DeadlockDetected: deadlock detected", "warehouse")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def budget(clock: Clock, seconds: float = 300.0, attempts: int = 6) -> RetryBudget:
    return RetryBudget(seconds, attempts, max_wait=5.0, clock=clock, jitter=lambda: 1.0)


def breaker_open(retry_in: float) -> BreakerOpen:
    return BreakerOpen("warehouse: circuit breaker open", "warehouse", retry_in)


def test_a_database_away_is_retried_until_the_budget_is_spent_then_says_why() -> None:
    clock = Clock()
    spend = budget(clock, seconds=300.0, attempts=2)
    for clock.now in (0.0, 10.0, 100.0, 299.0):  # more tries than `attempts`
        assert 0 < spend.after(AWAY) <= 5.0
    clock.now = 300.0

    with pytest.raises(TransientError) as ended:
        spend.after(AWAY)

    reason = str(ended.value)
    assert reason.startswith("warehouse: database is not accepting connections (recovering)")
    assert "gave up after 300 s of retries (PHASE_RETRY_BUDGET_SECONDS)" in reason
    assert ended.value.connection == "warehouse" and ended.value.__cause__ is AWAY


def test_the_last_wait_ends_with_the_budget() -> None:
    clock = Clock()
    spend = budget(clock, seconds=3.0)
    spend.after(AWAY)
    clock.now = 2.5

    assert spend.after(AWAY) == pytest.approx(0.5)


def test_a_lost_try_is_retried_a_few_times_only() -> None:
    clock = Clock()
    spend = budget(clock, attempts=3)
    spend.after(DEADLOCK)
    spend.after(DEADLOCK)

    with pytest.raises(TransientError, match=r"gave up after 3 tries \(PHASE_RETRY_ATTEMPTS\)"):
        spend.after(DEADLOCK)


def test_an_open_breaker_delays_the_next_try_and_never_ends_the_retries() -> None:
    clock = Clock()
    spend = budget(clock, seconds=3.0)
    spend.after(AWAY)
    for clock.now in (5.0, 50.0, 500.0):  # far past the budget
        assert spend.after(breaker_open(10.0)) >= 10.0

    with pytest.raises(TransientError) as ended:  # a real try fails: that ends it
        spend.after(AWAY)
    assert "circuit breaker" not in str(ended.value)
    assert "not accepting connections" in str(ended.value)


def test_a_breaker_whose_trial_is_out_says_to_wait_a_while_not_zero() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.failure()
    clock.now = 10.0
    assert breaker.allow()  # another batch takes the trial

    assert not breaker.allow() and breaker.retry_in() > 0


async def test_a_call_rides_out_more_failures_than_the_attempts_while_the_database_is_away() -> (
    None
):
    tries: list[int] = []
    waits: list[float] = []

    async def call() -> str:
        tries.append(1)
        if len(tries) <= 20:
            raise AWAY if len(tries) % 3 else breaker_open(1.0)
        return "done"

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = Settings(phase={"retry_attempts": 2, "retry_budget_seconds": 300})

    assert await retrying(settings, call, sleep) == "done"
    assert len(tries) == 21 and len(waits) == 20


async def test_a_permanent_error_is_not_retried() -> None:
    tries: list[int] = []

    async def call() -> str:
        tries.append(1)
        raise ValueError("no")

    with pytest.raises(ValueError):
        await retrying(Settings(), call)
    assert len(tries) == 1


async def test_a_run_asked_to_stop_does_not_wait_for_its_database() -> None:
    tries: list[int] = []

    async def call() -> str:
        tries.append(1)
        raise AWAY

    async def sleep(seconds: float) -> None:
        raise AssertionError("a stopped run does not sleep")

    stop = asyncio.Event()
    stop.set()
    with stopping_on(stop), pytest.raises(TransientError) as ended:
        await retrying(Settings(), call, sleep)
    assert ended.value is AWAY and len(tries) == 1

"""How long a batch keeps trying: the retry policy of the data plane.

A try that fails with a `TransientError` is tried again after a backoff
with full jitter (0.2 s doubling, at most PHASE_RETRY_MAX_SECONDS):

- the database away (`unavailable`: connection lost or refused, recovering,
  no pooled connection): until PHASE_RETRY_BUDGET_SECONDS have passed since
  the batch first failed; a database restart is ridden out;
- one try lost (a serialization failure, a deadlock, a lock timeout, every
  pooled connection busy): at most PHASE_RETRY_ATTEMPTS tries, within the
  same budget;
- an open circuit breaker: the next try waits for its trial. A refusal of
  the breaker never ends the retries: only a real try that fails once the
  budget is spent does, so the reason is always what the database did.

A statement past its statement timeout is not retried (it would run as
long again): it is no `TransientError` (streams.dataplane.failures).

A run asked to stop (paused, revoked, shutting down) stops retrying: the
batch ends with its last error and the run resumes from its checkpoint.

The clock, the sleep and the jitter are injected so it is tested without
waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from config import Settings
from streams.dataplane import metrics
from streams.dataplane.errors import BreakerOpen, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")
FIRST_BACKOFF = 0.2


class RetryBudget:
    """What one batch may still spend on retries; `after(exc)` says how long
    to wait before the next try, or raises the error that ends the batch."""

    def __init__(
        self,
        seconds: float,
        attempts: int,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.seconds, self.attempts, self.max_wait = seconds, attempts, max_wait
        self.clock, self.jitter = clock, jitter
        self.first_failure: float | None = None
        self.failures = 0  # every failed try, for the backoff
        self.lost = 0  # tries lost to contention, for `attempts`

    def after(self, exc: TransientError) -> float:
        now = self.clock()
        if self.first_failure is None:
            self.first_failure = now
        self.failures += 1
        backoff = self.jitter() * min(self.max_wait, FIRST_BACKOFF * 2.0**self.failures)
        if isinstance(exc, BreakerOpen):
            return max(backoff, exc.retry_in)
        spent = now - self.first_failure
        if not exc.unavailable:
            self.lost += 1
            if self.lost >= self.attempts:
                raise self._exhausted(exc, f"{self.lost} tries (PHASE_RETRY_ATTEMPTS)")
        if spent >= self.seconds:
            raise self._exhausted(exc, f"{spent:.0f} s of retries (PHASE_RETRY_BUDGET_SECONDS)")
        return min(backoff, self.seconds - spent)

    @staticmethod
    def _exhausted(exc: TransientError, spent: str) -> TransientError:
        ended = TransientError(
            f"{exc}; gave up after {spent}", exc.connection, unavailable=exc.unavailable
        )
        ended.__cause__ = exc
        return ended


# The stop signal of the phase run the running code belongs to (set by
# `stopping_on`): a run asked to stop (paused, revoked, shutting down) does
# not wait out a database that is away; it resumes from its checkpoint.
RUN_STOP: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "run_stop", default=None
)


@contextmanager
def stopping_on(stop: asyncio.Event) -> Iterator[None]:
    """Retries inside end, with their last error, once `stop` is set."""
    token = RUN_STOP.set(stop)
    try:
        yield
    finally:
        RUN_STOP.reset(token)


async def retrying(
    settings: Settings,
    call: Callable[[], Awaitable[T]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`call()`, tried again on transient errors as the module says."""
    phase = settings.phase
    budget = RetryBudget(phase.retry_budget_seconds, phase.retry_attempts, phase.retry_max_seconds)
    while True:
        try:
            return await call()
        except TransientError as exc:
            wait = budget.after(exc)
            metrics.RETRIES.labels(exc.connection).inc()
            log.warning("retrying in %.1f s after %s (try %d)", wait, exc, budget.failures)
            if await _stopped_within(wait, sleep):
                raise


async def _stopped_within(seconds: float, sleep: Callable[[float], Awaitable[None]]) -> bool:
    stop = RUN_STOP.get()
    if stop is None:
        await sleep(seconds)
        return False
    if not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
    return stop.is_set()

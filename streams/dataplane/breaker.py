"""A circuit breaker per database connection.

Closed: calls go through, and consecutive transient failures are counted.
At the threshold it opens: calls are held back for `reset_seconds` (a
caller waits `retry_in()` and asks again). Then it is half-open: one trial
call goes through; success closes it, failure opens it again; meanwhile the
others ask again every `poll_seconds`. A trial out for longer than
`reset_seconds` no longer holds the others back: the next caller is a trial
too (a trial that never reports, lost with whatever ran it, must not shut
the connection for good; a database that takes that long to answer one call
is up). The clock is injected so the logic is tested without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import IntEnum

log = logging.getLogger(__name__)


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] = lambda _: None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.threshold, self.reset_seconds, self.clock = threshold, reset_seconds, clock
        self.poll_seconds = min(poll_seconds, reset_seconds)
        self.on_change = on_change
        self.failures = 0
        self.opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._trial_out = False
        self._trial_at = 0.0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.clock() - self.opened_at >= self.reset_seconds:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """May a call go through now? In half-open, only one trial at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_held():
            if self._trial_out:
                log.warning(
                    "a half-open trial out for %.1f s has not reported; another call tries",
                    self.clock() - self._trial_at,
                )
            self._trial_out, self._trial_at = True, self.clock()
            return True
        return False

    def _trial_held(self) -> bool:
        """Is a trial out, and recent enough to wait for?"""
        return self._trial_out and self.clock() - self._trial_at < self.reset_seconds

    def success(self) -> None:
        self.failures, self._trial_out = 0, False
        self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        self.failures += 1
        self._trial_out = False
        if self._state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.opened_at = self.clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A trial call ended without telling whether the database is back."""
        self._trial_out = False

    def retry_in(self) -> float:
        """Seconds a caller held back now waits before asking again: until
        the trial when open, a short while when another call is the trial."""
        state = self.state
        if state is BreakerState.OPEN:
            return max(0.0, self.reset_seconds - (self.clock() - self.opened_at))
        return self.poll_seconds if state is BreakerState.HALF_OPEN and self._trial_held() else 0.0

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            self.on_change(state)

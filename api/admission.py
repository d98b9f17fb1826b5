"""Bounds on the commands the API takes on: published and, with
`?wait=true`, waiting for the read model.

Past what the system can take, requests would otherwise queue in the API
without end: each waits longer than the one before, until clients time out
while its memory grows. A new command is answered 503 at once, with the
reason and a Retry-After, before its body is read, when

- `limit` commands are in flight already, or
- the event loop runs more than `max_lag` seconds late: the process cannot
  keep up with what it has (its CPU is taken), so every request already
  waits that long before it is even read, and more work makes it worse.

Nothing of a refused command was published: the client may send it again
as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import Counter, Gauge

RETRY_SECONDS = "1"
LAG_INTERVAL = 0.05  # seconds between two looks at the event loop
IN_FLIGHT = Gauge("migrator_api_commands_in_flight", "Commands published or awaited at once")
SHED = Counter("migrator_api_commands_shed_total", "Commands refused (503)", ["why"])
LAG = Gauge("migrator_api_event_loop_lag_seconds", "How late the API's event loop last woke")


class LoopLag:
    """How late the event loop ran at its last look (seconds)."""

    def __init__(self, interval: float = LAG_INTERVAL) -> None:
        self.interval, self.seconds, self.looks = interval, 0.0, 0

    def __call__(self) -> float:
        return self.seconds

    async def watch(self) -> None:
        """Run until cancelled: sleep `interval`, note how much later it woke."""
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            await asyncio.sleep(self.interval)
            self.seconds = max(0.0, loop.time() - began - self.interval)
            self.looks += 1
            LAG.set(self.seconds)


class CommandSlots:
    def __init__(
        self, limit: int, max_lag: float = 0.0, lag: Callable[[], float] = lambda: 0.0
    ) -> None:
        """`max_lag` 0: no bound on the event loop's lag."""
        self.limit, self.max_lag, self.lag, self.held = limit, max_lag, lag, 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """One command's place while the block runs; 503 when refused."""
        self._check()
        self.held += 1
        IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.held -= 1
            IN_FLIGHT.dec()

    def _check(self) -> None:
        if self.held >= self.limit:
            SHED.labels("in_flight").inc()
            raise _full(f"{self.held} commands already in flight; try again shortly")
        late = self.lag()
        if self.max_lag and late > self.max_lag:
            SHED.labels("lag").inc()
            raise _full(f"the API is overloaded ({late * 1000:.0f} ms behind); try again shortly")


def _full(reason: str) -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(reason=reason, headers={"Retry-After": RETRY_SECONDS})

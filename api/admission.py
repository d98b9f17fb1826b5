"""A bound on the commands the API holds at once: published and, with
`?wait=true`, waiting for the read model.

Past what the system can take, requests would otherwise queue in the API
without end: each waits longer than the one before, until clients time out
while its memory grows. With `limit` commands in flight a new one is
answered 503 at once, with the reason and a Retry-After, before its body is
read: nothing of it was published, so the client may send it again as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import Counter, Gauge

RETRY_SECONDS = "1"
IN_FLIGHT = Gauge("migrator_api_commands_in_flight", "Commands published or awaited at once")
SHED = Counter("migrator_api_commands_shed_total", "Commands refused (503) with the API full")


class CommandSlots:
    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """One command's place while the block runs; 503 when all are taken."""
        if self.held >= self.limit:
            SHED.inc()
            raise web.HTTPServiceUnavailable(
                reason=f"{self.held} commands already in flight; try again shortly",
                headers={"Retry-After": RETRY_SECONDS},
            )
        self.held += 1
        IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.held -= 1
            IN_FLIGHT.dec()

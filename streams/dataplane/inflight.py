"""The statements a phase run has in flight, cancelled on the server when
the run is asked to stop (paused, cancelled, superseded, revoked, shutting
down), so the stop takes seconds, not as long as the statement would run.

Every connection a run holds is registered here while it is held
(`streams.dataplane.database` does it). Once the run's stop is set, a
watcher sends a cancel request for each held connection, and again every
CANCEL_EVERY seconds while the run still holds any (a cancel that reaches a
connection between two statements is ignored by the server). A cancelled
connection is closed when released, never handed back to the pool: a cancel
request still on its way must not reach the next statement run on it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection

log = logging.getLogger(__name__)
Conn = AsyncConnection[tuple[Any, ...]]
CANCEL_EVERY = 1.0
CANCEL_TIMEOUT = 5.0


class InFlight:
    """The connections one run holds now, and which of them were cancelled."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.held: set[Conn] = set()
        self.cancelled: set[Conn] = set()

    def hold(self, conn: Conn) -> None:
        self.held.add(conn)

    async def release(self, conn: Conn) -> None:
        self.held.discard(conn)
        if conn in self.cancelled:
            self.cancelled.discard(conn)
            await conn.close()

    async def watch(self) -> None:
        """Once the stop is set, cancel what the run holds until it holds nothing."""
        await self.stop.wait()
        while True:
            for conn in list(self.held):
                await self._cancel(conn)
            await asyncio.sleep(CANCEL_EVERY)

    async def _cancel(self, conn: Conn) -> None:
        if conn not in self.held or conn.closed:
            return
        self.cancelled.add(conn)  # before the request: its release now closes it
        try:
            await conn.cancel_safe(timeout=CANCEL_TIMEOUT)
        except Exception as exc:  # the next round tries again; the close ends it anyway
            log.warning("cancel of a statement of a stopping run failed: %s", exc)


RUN: contextvars.ContextVar[InFlight | None] = contextvars.ContextVar("in_flight", default=None)


def current() -> InFlight | None:
    """The in-flight registry of the run the running code belongs to."""
    return RUN.get()


def stopping() -> bool:
    """Is the run the running code belongs to asked to stop?"""
    run = RUN.get()
    return run is not None and run.stop.is_set()


@asynccontextmanager
async def cancelling_on(stop: asyncio.Event) -> AsyncIterator[InFlight]:
    """Inside, the statements of the running code are cancelled once `stop` is set."""
    run = InFlight(stop)
    token = RUN.set(run)
    watcher = asyncio.ensure_future(run.watch())
    try:
        yield run
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        RUN.reset(token)

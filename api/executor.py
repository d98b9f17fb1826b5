"""The API's own bounded pool of threads for expensive work, shared fairly.

Blocking Kafka calls run here, never in the event loop's default pool, so a
flood of them queues here and not in front of `/ready`'s Kafka check. Each
client (its token, else its address) may have `per_client` expensive requests
in flight (these calls, and the event history); one more gets 429.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

RETRY_SECONDS = "1"


class Offload:
    def __init__(self, workers: int, per_client: int) -> None:
        self.per_client = per_client
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="api-offload")
        self._busy: Counter[str] = Counter()

    def in_flight(self, client: str) -> int:
        return self._busy[client]

    @contextlib.asynccontextmanager
    async def limited(self, client: str) -> AsyncIterator[None]:
        """Hold one of `client`'s places while the block runs."""
        release = self._claim(client)
        try:
            yield
        finally:
            release()

    async def run(self, client: str, work: Callable[..., Any], *args: Any) -> Any:
        """`work(*args)` in the pool. The client's place is held until the
        thread is done, even when the client has gone: leaving early frees nothing."""
        release, loop = self._claim(client), asyncio.get_running_loop()
        try:
            future = self._pool.submit(work, *args)
        except RuntimeError:  # shut down
            release()
            raise
        future.add_done_callback(lambda _: _call_soon(loop, release))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _claim(self, client: str) -> Callable[[], None]:
        if self._busy[client] >= self.per_client:
            raise web.HTTPTooManyRequests(
                reason=f"{self.per_client} expensive requests of this client already in flight",
                headers={"Retry-After": RETRY_SECONDS},
            )
        self._busy[client] += 1
        return lambda: self._release(client)

    def _release(self, client: str) -> None:
        self._busy[client] -= 1
        if self._busy[client] <= 0:
            del self._busy[client]


def _call_soon(loop: asyncio.AbstractEventLoop, release: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to release
        loop.call_soon_threadsafe(release)

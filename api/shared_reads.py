"""Reads that many requests ask for at once share one query.

Every `POST ?wait=true` reads the read model after it publishes, and again
each time the projector's NOTIFY names its migration. A query each would
queue hundreds of requests on the pool's few connections (at 300 commands/s
the answer waited seconds after the commit was heard). Here a request's key
joins the next batch instead: while `concurrency` batches are being read,
the keys asked for meanwhile gather, and each batch is one read for all of
its keys (at most `batch_max`). There is no timer: an idle reader sends a
lone key at once, and a busy one sends bigger batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Fetch = Callable[[Sequence[K]], Awaitable[dict[K, V]]]


class SharedReads(Generic[K, V]):
    def __init__(self, fetch: Fetch[K, V], concurrency: int = 2, batch_max: int = 500) -> None:
        self._fetch, self.concurrency, self.batch_max = fetch, concurrency, batch_max
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._reading: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Keys asked for and not yet being read."""
        return len(self._waiting)

    async def get(self, key: K) -> V | None:
        """What the fetch found for `key` (None: nothing), read with the keys
        asked for at about the same time; the fetch's error if it failed."""
        found: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(found)
        self._start()
        return await found

    def _start(self) -> None:
        while self._waiting and len(self._reading) < self.concurrency:
            keys = list(self._waiting)[: self.batch_max]
            batch = {key: self._waiting.pop(key) for key in keys}
            task = asyncio.create_task(self._read(batch))
            self._reading.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._reading.discard(task)
        self._start()

    async def _read(self, batch: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch(list(batch))
        except asyncio.CancelledError:  # the app is closing
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:  # every asker of the batch gets it
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, futures in batch.items():
            for future in futures:
                if not future.done():  # its asker may have gone (cancelled)
                    future.set_result(found.get(key))

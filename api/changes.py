"""Hear the projector's commits (LISTEN) and wake whoever waits for a change.

The projector NOTIFYs `migration_changes` at each commit with the migrations
it wrote. A `Watch` registers *before* its owner reads the read model, so a
change between that read and the wait is never missed. The notification is
only a hint: the read model is read again after it. When the listening
connection drops, every watch wakes (and reads again) once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator

import psycopg

from projections.store import CHANNEL

log = logging.getLogger(__name__)
ALL = "*"


class Watch:
    """Set when a change that concerns it is committed."""

    def __init__(self, closing: asyncio.Event) -> None:
        self._changed = asyncio.Event()
        self._closing = closing

    def wake(self) -> None:
        self._changed.set()

    async def wait(self, seconds: float) -> bool:
        """True when woken within `seconds` (and ready for the next wait);
        False at once when the hub is closing (the server is shutting down)."""
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._changed.wait()
        except TimeoutError:
            return False
        self._changed.clear()
        return not self._closing.is_set()


class ChangeHub:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._watches: dict[str, set[Watch]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.closing = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="change-hub")

    def close(self) -> None:
        """Shutting down: every waiter returns now (long polls answer, sockets close)."""
        self.closing.set()
        self._wake_all()

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def watch(self, migration_id: str | None = None) -> Iterator[Watch]:
        """A watch on one migration, or (None) on every change."""
        key = ALL if migration_id is None else migration_id
        watch = Watch(self.closing)
        self._watches[key].add(watch)
        try:
            yield watch
        finally:
            self._watches[key].discard(watch)
            if not self._watches[key]:
                del self._watches[key]

    def dispatch(self, payload: str) -> None:
        changed = _changed(payload)
        if changed is None:
            self._wake_all()
            return
        for key in (ALL, *changed):
            for watch in self._watches.get(key, ()):
                watch.wake()

    def _wake_all(self) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.wake()

    async def _listen(self) -> None:
        pause = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._wake_all()  # whatever happened while we were away
                    pause = 0.2
                    async for note in conn.notifies():
                        self.dispatch(note.payload)
            except psycopg.Error as exc:
                log.warning("change listener: %s; listening again in %.1f s", exc, pause)
            self.listening.clear()
            self._wake_all()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)


def _changed(payload: str) -> list[str] | None:
    """The migration ids a notification names; None: wake everyone. Any role
    that may connect may NOTIFY this channel (PostgreSQL has no privilege for
    it), so a payload not of the projector's shape only wakes readers, who
    read the read model again: it can neither stop the listener nor say
    anything the table does not."""
    try:
        changed = json.loads(payload)["m"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(changed, dict) or ALL in changed:
        return None
    return [key for key in changed if isinstance(key, str)]

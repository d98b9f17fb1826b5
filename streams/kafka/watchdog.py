"""A guard against a Kafka client call that never returns.

librdkafka can overrun a transactional call's own timeout by minutes (a
broker restart under `send_offsets_to_transaction`, librdkafka#5456); the
call holds the thread that must poll and heartbeat the group, and SIGTERM
cannot interrupt it. Each guarded call is watched from a daemon thread: one
that overruns its timeout by `GRACE` seconds ends the process with exit
status `HUNG` (config.exits) at once, so its supervisor starts a fresh one,
which fences this one's transactional id and resumes from the committed
offsets. Nothing is lost: an open transaction is aborted by the fence.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from config.exits import HUNG

log = logging.getLogger(__name__)
GRACE = 5.0  # beyond a call's own timeout


def _end_process(what: str, seconds: float) -> None:
    log.critical(
        "%s has not returned after %.0f s; exiting (%d) to be restarted", what, seconds, HUNG
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(HUNG)


class Watchdog:
    """Watches one call at a time (the thread that owns the client makes them)."""

    def __init__(
        self, grace: float = GRACE, on_overrun: Callable[[str, float], None] = _end_process
    ) -> None:
        self.grace, self.on_overrun = grace, on_overrun
        self._lock = threading.Lock()
        self._watched: tuple[str, float, float] | None = None  # what, started, deadline
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, what: str, timeout: float) -> Iterator[None]:
        """Around a call that should return within `timeout` seconds."""
        started = time.monotonic()
        with self._lock:
            self._watched = (what, started, started + timeout + self.grace)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._watched = None

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            with self._lock:
                watched = self._watched
            if watched is not None and time.monotonic() > watched[2]:
                what, started, _ = watched
                self.on_overrun(what, time.monotonic() - started)
                with self._lock:
                    if self._watched is watched:
                        self._watched = None  # reported once (when the process goes on)

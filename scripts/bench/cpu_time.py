"""CPU time of this process and of a PostgreSQL backend, for benchmarks on a
shared machine: wall-clock rates move with everyone else's load, the CPU an
event costs much less.

The backend's time is read from /proc (PostgreSQL on this machine, as the
local stack runs it); elsewhere it is reported as unknown (None).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

TICK = 1 / os.sysconf("SC_CLK_TCK")


def backend_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` (a backend), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * TICK  # utime, stime


@dataclass
class Meter:
    """CPU seconds of this process and of one backend since `start()`."""

    backend_pid: int | None = None
    _own: float = 0.0
    _backend: float | None = None
    own: float = 0.0
    backend: float | None = None

    def start(self) -> None:
        self._own, self._backend = time.process_time(), backend_seconds(self.backend_pid)

    def read(self) -> None:
        self.own = time.process_time() - self._own
        now = backend_seconds(self.backend_pid)
        self.backend = None if now is None or self._backend is None else now - self._backend

    def per_event(self, events: int) -> str:
        own = self.own / events * 1e6
        if self.backend is None:
            return f"{own:,.1f} µs/event here, database unknown"
        total = own + self.backend / events * 1e6
        db = self.backend / events * 1e6
        return f"{total:,.1f} µs/event ({own:,.1f} here + {db:,.1f} in the database)"

    @property
    def total(self) -> float | None:
        return None if self.backend is None else self.own + self.backend

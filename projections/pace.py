"""How fast a phase's run goes, and when it should end: pure, from event times.

A run is measured from its start, the PhaseRequested that began it (the
phase's first run, or a resume or a retry from its checkpoint), and the rows
and bytes the phase had done by then. At each progress event and at the
phase's completion, as of that event's time:

    rows_per_second   (rows done - rows done at the run's start) / seconds since the run's start
    bytes_per_second  the same, in bytes; unknown (None) while no bytes were counted
    eta_seconds       rows still to do (rows_total - rows_done) / rows_per_second;
                      0 once done; unknown (None) without a total or before any row moved
    eta_at            the event's time plus eta_seconds

A completed phase's ETA is 0 and its rates are its last run's, start to end;
a paused, failed or cancelled one has no ETA, and keeps the rates last measured.

The clock is the orchestrator's: a run starts when it is requested, so its
rate includes the wait for a phase worker and the phase's setup. A resumed
run's first figures also hold the rows its previous run committed after its
last progress event (at most a progress interval's worth). Figures that fall
below the last ones (a copy started over in a new snapshot) start the run's
measure again from that event.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from msgspec import Struct


class RunStart(Struct, frozen=True):
    """When a run started, and the rows and bytes done by then."""

    at: str
    rows: int = 0
    bytes: int = 0


class Done(Struct, frozen=True):
    """What a phase has done, as of `at`."""

    at: str
    rows: int
    rows_total: int
    bytes: int


class Pace(Struct, frozen=True):
    rows_per_second: float | None = None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None
    eta_at: str | None = None


UNKNOWN = Pace()


def restarted(rows: int, nbytes: int, done: Done) -> bool:
    """True when `done` counts fewer rows or bytes than were counted before:
    the phase started its work over, and the run is measured again from `done`."""
    return done.rows < rows or done.bytes < nbytes


def pace(start: RunStart | None, done: Done) -> Pace:
    """The run's rates since `start` and its ETA, as of `done.at` (UNKNOWN
    without a start, or before any time has passed since it)."""
    if start is None:
        return UNKNOWN
    seconds = _seconds(start.at, done.at)
    if seconds is None or seconds <= 0:
        return UNKNOWN
    rows_rate = (done.rows - start.rows) / seconds
    bytes_rate = (done.bytes - start.bytes) / seconds if done.bytes else None
    eta = remaining(done.rows, done.rows_total, rows_rate)
    return Pace(rows_rate, bytes_rate, eta, _plus(done.at, eta))


def remaining(rows_done: int, rows_total: int, rows_per_second: float) -> float | None:
    """Seconds until `rows_total` at this rate: 0 once there, None without a
    total or a rate."""
    if rows_total <= 0:
        return None
    if rows_done >= rows_total:
        return 0.0
    if rows_per_second <= 0:
        return None
    seconds = (rows_total - rows_done) / rows_per_second
    return seconds if math.isfinite(seconds) else None


def _seconds(start: str, end: str) -> float | None:
    """Seconds from `start` to `end`; None for times that cannot be compared
    (the database judges an event's time when it stores it, not this fold)."""
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (ValueError, TypeError):
        return None


def _plus(at: str, seconds: float | None) -> str | None:
    """`at` plus `seconds`; None past the calendar's end (a crawl's ETA)."""
    if seconds is None:
        return None
    try:
        return (datetime.fromisoformat(at) + timedelta(seconds=seconds)).isoformat()
    except (ValueError, OverflowError):
        return None

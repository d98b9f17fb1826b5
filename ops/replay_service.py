"""The topic replay use case: resolve the range asked for (offsets or times
per partition) against what the source topic holds, then copy it with
`ops.replay.TopicReplay`. The CLI parses its options into a `ReplayRequest`
and renders what comes back (plain dataclasses)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from config import Settings
from ops.dead_letters.purge import parse_before
from ops.errors import BadSelection
from ops.replay import OffsetRange, TopicReplay, replay_id, resolve_offsets, time_offsets
from streams.kafka.topics import partition_count, watermarks


@dataclass(frozen=True)
class ReplayRequest:
    """Copy `source` into `target`: offsets (`p:o`, [from, to)) or ISO 8601
    times (the first offset at or after them), not both; none: everything."""

    source: str
    target: str
    from_offsets: tuple[str, ...] = ()
    to_offsets: tuple[str, ...] = ()
    from_time: str | None = None
    to_time: str | None = None
    run_id: str | None = None  # default: named by its range, so a rerun resumes

    def __post_init__(self) -> None:
        if (self.from_offsets or self.to_offsets) and (self.from_time or self.to_time):
            raise BadSelection("give offsets or times, not both")


@dataclass(frozen=True)
class ReplayPlan:
    run_id: str
    source: str
    target: str
    selected: OffsetRange


@dataclass(frozen=True)
class ReplayOutcome:
    run_id: str
    copied: int  # by this run (an earlier run of the same replay copied the rest)
    range_offsets: int
    stopped: bool  # asked to stop before the range's end


def plan_replay(settings: Settings, request: ReplayRequest) -> ReplayPlan:
    """The offsets the replay covers and its id (read-only)."""
    selected = _range(settings, request)
    partition_count(settings, request.target)  # a missing target is named before anything runs
    run_id = request.run_id or replay_id(request.source, request.target, selected)
    return ReplayPlan(run_id, request.source, request.target, selected)


def replay(
    settings: Settings,
    plan: ReplayPlan,
    *,
    progress: Callable[[int], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> ReplayOutcome:
    """Copy what is left of the planned range; `progress` hears the records
    copied so far, `stop` ends the run after the transaction in flight."""
    stop = stop or threading.Event()
    job = TopicReplay(
        settings, plan.source, plan.target, plan.selected, run_id=plan.run_id, stop=stop,
        progress=progress,
    )  # fmt: skip
    copied = job.run()
    return ReplayOutcome(job.id, copied, plan.selected.size, stopped=stop.is_set())


def _range(settings: Settings, request: ReplayRequest) -> OffsetRange:
    marks = watermarks(settings, request.source)
    if not (request.from_time or request.to_time):
        start, end = parse_before(request.from_offsets), parse_before(request.to_offsets)
        return resolve_offsets(marks, start, end)
    start = _time_offsets(settings, request.source, request.from_time, len(marks))
    end = _time_offsets(settings, request.source, request.to_time, len(marks))
    return resolve_offsets(marks, start, end)


def _time_offsets(settings: Settings, topic: str, text: str | None, count: int) -> dict[int, int]:
    return time_offsets(settings, topic, parse_time(text), count) if text else {}


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with its zone (`Z` or `+01:00`)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadSelection(f"{text!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        raise BadSelection(f"{text!r} has no time zone (add Z or +01:00)")
    return when

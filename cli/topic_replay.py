"""`migrator topics replay`: copy a range of one topic into another, exactly once."""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.errors import err, fail, operator_errors
from config import Settings, load_settings
from ops.dead_letters import BadSelection, parse_before
from ops.replay import OffsetRange, TopicReplay, resolve_offsets, time_offsets
from streams.kafka.topics import partition_count, watermarks

Offsets = Annotated[list[str] | None, typer.Option(help="partition:offset (repeatable)")]
When = Annotated[str | None, typer.Option(help="ISO 8601 time, e.g. 2026-11-29T10:00:00Z")]


def replay(
    from_topic: Annotated[str, typer.Option(help="copy from this topic")],
    to_topic: Annotated[str, typer.Option(help="into this (existing) topic")],
    from_offset: Offsets = None,
    to_offset: Offsets = None,
    from_time: When = None,
    to_time: When = None,
    run_id: Annotated[
        str | None, typer.Option(help="name the run (default: from its range)")
    ] = None,
) -> None:
    """Copy a range of FROM_TOPIC (key, value, headers) into TO_TOPIC, in
    transactions. Offsets are per partition ([from, to)); times pick the first
    offset at or after them. Run it again with the same arguments to resume."""
    settings = load_settings()
    if (from_offset or to_offset) and (from_time or to_time):
        raise fail("give offsets or times, not both")
    with operator_errors():
        selected = _range(settings, from_topic, from_offset, to_offset, from_time, to_time)
        partition_count(settings, to_topic)  # a missing target is named before anything runs
        stop = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            copied, run = _run(settings, from_topic, to_topic, selected, run_id, stop)
        finally:
            signal.signal(signal.SIGINT, previous)
    print(json.dumps({"replay": run, "copied": copied, "range_offsets": selected.size}))
    if stop.is_set():
        raise fail(f"stopped after {copied} records; run the same command again to go on", 130)


def _range(
    settings: Settings,
    topic: str,
    from_offset: list[str] | None,
    to_offset: list[str] | None,
    from_time: str | None,
    to_time: str | None,
) -> OffsetRange:
    marks = watermarks(settings, topic)
    if not (from_time or to_time):
        return resolve_offsets(
            marks, parse_before(from_offset or []), parse_before(to_offset or [])
        )
    start = time_offsets(settings, topic, _time(from_time), len(marks)) if from_time else {}
    end = time_offsets(settings, topic, _time(to_time), len(marks)) if to_time else {}
    return resolve_offsets(marks, start, end) if start or end else resolve_offsets(marks, {}, {})


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadSelection(f"{text!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        raise BadSelection(f"{text!r} has no time zone (add Z or +01:00)")
    return when


def _run(
    settings: Settings,
    source: str,
    target: str,
    selected: OffsetRange,
    run_id: str | None,
    stop: threading.Event,
) -> tuple[int, str]:
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("replay", total=selected.size)
        job = TopicReplay(
            settings, source, target, selected, run_id=run_id, stop=stop,
            progress=lambda n: bar.update(task, completed=n),
        )  # fmt: skip
        err.print(
            f"replay {job.id}: {source} -> {target}, offsets {selected.start} to {selected.end}"
        )
        return job.run(), job.id

"""`migrator topics replay`: copy a range of one topic into another, exactly once."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.errors import err, fail, operator_errors
from config import load_settings
from ops.replay_service import ReplayOutcome, ReplayPlan, ReplayRequest, plan_replay
from ops.replay_service import replay as run_replay

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
    with operator_errors():
        request = ReplayRequest(
            source=from_topic, target=to_topic, from_offsets=tuple(from_offset or ()),
            to_offsets=tuple(to_offset or ()), from_time=from_time, to_time=to_time, run_id=run_id,
        )  # fmt: skip
        plan = plan_replay(settings, request)
        with _interruptible() as stop, _progress(plan) as progress:
            outcome = run_replay(settings, plan, progress=progress, stop=stop)
    _report(outcome)


def _report(outcome: ReplayOutcome) -> None:
    copied = outcome.copied
    print(
        json.dumps(
            {"replay": outcome.run_id, "copied": copied, "range_offsets": outcome.range_offsets}
        )
    )
    if outcome.stopped:
        raise fail(f"stopped after {copied} records; run the same command again to go on", 130)


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """A stop flag that Ctrl-C sets (the transaction in flight ends)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress(plan: ReplayPlan) -> Iterator[Callable[[int], None]]:
    """A progress bar over the planned range, under a line that names the run."""
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("replay", total=plan.selected.size)
        selected = plan.selected
        err.print(
            f"replay {plan.run_id}: {plan.source} -> {plan.target}, "
            f"offsets {selected.start} to {selected.end}"
        )
        yield lambda copied: bar.update(task, completed=copied)

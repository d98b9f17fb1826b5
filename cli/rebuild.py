"""`migrator projection rebuild`: rebuild the read model by replay, without downtime."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.errors import err, fail
from config import Settings, load_settings
from projections.collector import pace_for_many_objects
from projections.exceptions import RebuildStopped
from projections.rebuild import Outcome, Rebuild
from projections.rebuild import Progress as Done

app = typer.Typer(no_args_is_help=True, help="The PostgreSQL read model.")
COLUMNS = (
    TextColumn("{task.description:<11}"),
    BarColumn(),
    TextColumn("{task.completed:,.0f}/{task.total:,.0f} offsets"),
    TextColumn("{task.fields[events]:,} events, {task.fields[migrations]:,} rows"),
    TextColumn("{task.fields[rate]:,.0f} events/s"),
    TimeElapsedColumn(),
    TextColumn("left"),
    TimeRemainingColumn(),
)


@app.command("rebuild")
def rebuild(
    keep_old: Annotated[
        bool, typer.Option(help="keep the replaced tables in schema retired_<id>")
    ] = False,
    lock_timeout: Annotated[
        float, typer.Option(min=0.1, help="seconds to wait for the live tables' locks")
    ] = 5.0,
    swap_lag: Annotated[
        int, typer.Option(min=0, help="swap once at most this many records behind")
    ] = 1000,
) -> None:
    """Replay migration.events from the beginning into shadow tables while the
    live projector and the API go on, catch up with the committed end, then
    swap the shadow in, in one transaction. Works on an empty database too."""
    settings = load_settings()
    rebuild_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "_" + uuid.uuid4().hex[:6]
    pace_for_many_objects()
    try:
        outcome = asyncio.run(_run(settings, rebuild_id, keep_old, lock_timeout, swap_lag))
    except RebuildStopped as exc:  # interrupted, as by Ctrl-C; any other error: cli.errors
        raise fail(str(exc), 130) from exc
    print(json.dumps(_summary(outcome)))


async def _run(
    settings: Settings, rebuild_id: str, keep_old: bool, lock_timeout: float, swap_lag: int
) -> Outcome:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    with Progress(*COLUMNS, console=err) as bar:
        task = bar.add_task("connecting", total=0, events=0, migrations=0, rate=0.0)
        job = Rebuild(
            settings,
            rebuild_id,
            keep_old=keep_old,
            lock_timeout=lock_timeout,
            swap_lag=swap_lag,
            on_progress=lambda done: _show(bar, task, done),
            stop=stop,
        )
        err.print(f"rebuild {rebuild_id}: {job.topic} into schema {job.shadow}, then swap")
        return await job.run()


def _show(bar: Progress, task: TaskID, done: Done) -> None:
    bar.update(
        task,
        description=done.stage,
        completed=done.offsets_done,
        total=done.offsets_total,
        events=done.events,
        migrations=done.migrations,
        rate=done.rate,
    )


def _summary(outcome: Outcome) -> dict[str, object]:
    return {
        "rebuild": outcome.rebuild_id,
        "events": outcome.events,
        "migrations": outcome.migrations,
        "offsets": {str(p): o for p, o in sorted(outcome.offsets.items())},
        "retired_schema": outcome.retired,
        "seconds": round(outcome.seconds, 2),
    }

"""`migrator projection refold <migration-id>`: fold one migration again from
the log, and lift its quarantine when its sequence is now whole and storable."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from cli.errors import err
from config import Settings, load_settings
from projections.refold import Progress as Read
from projections.refold import Refold, Refolded

STILL_QUARANTINED = 3
COLUMNS = (
    TextColumn("partition {task.fields[partition]}"),
    BarColumn(),
    TextColumn("{task.completed:,.0f}/{task.total:,.0f} offsets"),
    TextColumn("{task.fields[events]:,} of its events"),
    TimeElapsedColumn(),
)


def refold(
    migration_id: Annotated[str, typer.Argument(help="the migration to fold again")],
    lock_timeout: Annotated[
        float, typer.Option(min=0.1, help="seconds to wait for the projector's offsets lock")
    ] = 5.0,
) -> None:
    """Read the migration's events again from migration.events (read_committed,
    up to the projector's stored offset), fold them into its row from scratch
    (NUL characters stored escaped, and listed in escaped_sequences), and lift
    its quarantine if its sequence is 1..N and storable. Prints the outcome as
    JSON; exits 3 when the migration stays quarantined (the reason is printed)."""
    settings = load_settings()
    outcome = asyncio.run(_run(settings, migration_id, lock_timeout))
    print(json.dumps(_summary(outcome)))
    if outcome.quarantine is not None:
        err.print(f"still quarantined: {outcome.quarantine.reason}", markup=False)
        raise typer.Exit(STILL_QUARANTINED)


async def _run(settings: Settings, migration_id: str, lock_timeout: float) -> Refolded:
    with Progress(*COLUMNS, console=err) as bar:
        task = bar.add_task("reading", total=0, partition="?", events=0)
        job = Refold(
            settings,
            migration_id,
            lock_timeout=lock_timeout,
            on_progress=lambda read: _show(bar, task, read),
        )
        return await job.run()


def _show(bar: Progress, task: TaskID, read: Read) -> None:
    bar.update(
        task,
        completed=read.offsets_done,
        total=read.offsets_total,
        partition=read.partition,
        events=read.events,
    )


def _summary(outcome: Refolded) -> dict[str, object]:
    q = outcome.quarantine
    return {
        "migration_id": outcome.migration_id,
        "partition": outcome.partition,
        "events": outcome.events,
        "version": outcome.version,
        "quarantine": {"reason": q.reason, "at_sequence": q.at_sequence} if q else None,
        "lifted": outcome.lifted,
        "escaped_sequences": list(outcome.escaped),
    }

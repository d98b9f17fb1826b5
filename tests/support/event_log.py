"""Event logs written straight to `migration.events`, as the orchestrator
writes them (keyed by migration id, in a Kafka transaction), whatever they
hold: gaps, forks, values the database refuses. And a projector run in the
background of a test, with reads of the read model it fills."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
from confluent_kafka import Producer

from config import KafkaNames, Settings
from domain import (
    Event,
    Input,
    MigrationState,
    PauseMigration,
    PhaseProgressed,
    ResumeMigration,
    StartMigration,
    decide,
    evolve,
    task_for,
)
from projections.projector import Projector
from schemas import encode
from streams.kafka.clients import producer_config
from tests.support.phase_simulator import SNAPSHOT, answer
from tests.support.read_side import AT, SPEC


def write_log(settings: Settings, names: KafkaNames, events: Sequence[Event]) -> None:
    """`events` on the events topic, committed in one transaction."""
    producer = Producer(producer_config(settings, **{"transactional.id": uuid.uuid4().hex}))
    producer.init_transactions(30)
    producer.begin_transaction()
    for event in events:
        value, headers = encode(event)
        producer.produce(names.events, value, event.migration_id.encode(), headers=headers)
    producer.commit_transaction(30)


def interleaved(histories: Sequence[Sequence[Event]]) -> list[Event]:
    """Round robin over the histories: every batch touches many migrations."""
    longest = max(len(h) for h in histories)
    return [h[i] for i in range(longest) for h in histories if i < len(h)]


def paused_then_resumed(migration_id: str, reason: str) -> tuple[list[Event], list[Event]]:
    """A migration started, paused (with `reason`) in its first phase, then
    resumed to completion: (the events up to the pause, the events after)."""
    state = MigrationState(migration_id=migration_id)
    start = StartMigration(command_id=f"c-{migration_id}", migration_id=migration_id, spec=SPEC)
    state, started = _fold(state, start, answering=False)
    pause = PauseMigration(command_id=f"c-{migration_id}-p", migration_id=migration_id)
    state, paused = _fold(state, replace(pause, reason=reason))
    resume = ResumeMigration(command_id=f"c-{migration_id}-r", migration_id=migration_id)
    _, resumed = _fold(state, resume)
    return started + paused, resumed


def timed(migration_id: str, *inputs: tuple[float, Input]) -> list[Event]:
    """The events `inputs` cause, each decided at its own time: `seconds`
    after AT. Nothing answers the phase tasks: the inputs hold the results."""
    state, out = MigrationState(migration_id=migration_id), []
    start = datetime.fromisoformat(AT)
    for seconds, given in inputs:
        at = (start + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
        for event in decide(state, given, at):
            state = evolve(state, event)
            out.append(event)
    return out


def paced(migration_id: str) -> list[Event]:
    """A migration 10 s into its extract and half way: 50 of 100 rows and
    5,000 bytes, read in the simulator's SNAPSHOT. Its pace: 5 rows/s,
    500 bytes/s, 10 s to go (at AT + 20 s)."""
    start = StartMigration(command_id=f"c-{migration_id}", migration_id=migration_id, spec=SPEC)
    progress = PhaseProgressed(
        result_id=f"r-{migration_id}",
        migration_id=migration_id,
        phase="extract",
        run=1,
        rows_done=50,
        rows_total=100,
        checkpoint="50",
        bytes_done=5000,
        snapshot=SNAPSHOT,
    )
    return timed(migration_id, (0, start), (10, progress))


def _fold(
    state: MigrationState, given: Input, answering: bool = True
) -> tuple[MigrationState, list[Event]]:
    """Decide `given`, and what the simulated phase worker answers to its tasks."""
    out: list[Event] = []
    inputs = [given]
    while inputs:
        for event in decide(state, inputs.pop(0), AT):
            state = evolve(state, event)
            out.append(event)
            task = task_for(state, event)
            if task is not None and answering:
                inputs.extend(answer(task))
    return state, out


async def scalar(settings: Settings, sql: str, *args: object) -> Any:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            row = await (await conn.execute(sql.encode(), args)).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return row[0] if row else None


async def rows(settings: Settings, sql: str, *args: object) -> list[dict[str, Any]]:
    dsn = settings.database.url.get_secret_value()
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
        conn.cursor(row_factory=psycopg.rows.dict_row) as cur,
    ):
        await cur.execute(sql.encode(), args)
        return await cur.fetchall()


@asynccontextmanager
async def projecting(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """A projector running in this process until the block ends."""
    projector = Projector(settings)
    task = asyncio.create_task(projector.run())
    try:
        yield task
    finally:
        projector.stop()
        await task


async def until(
    settings: Settings, sql: str, expected: object, task: asyncio.Task[None] | None = None
) -> None:
    """Wait until `sql` gives `expected`; a projector task that ended fails it."""
    last: object = None
    try:
        async with asyncio.timeout(120):
            while (last := await scalar(settings, sql)) != expected:
                if task is not None and task.done():
                    task.result()
                    raise AssertionError("the projector stopped")
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{sql!r} gave {last!r}, not {expected!r}") from None


VOLATILE = {"feed_version", "quarantined_at"}  # renumbered by a rebuild; when it was parked
KEYS = {
    "migrations": "migration_id",
    "migration_events": "migration_id, sequence",
    "migration_phases": "migration_id, phase",
}


async def snapshot(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every row of the read model, but the columns that say when it was written."""
    out = {}
    for table, order in KEYS.items():
        found = await rows(settings, f"SELECT * FROM {table} ORDER BY {order}")
        out[table] = [{k: v for k, v in r.items() if k not in VOLATILE} for r in found]
    return out

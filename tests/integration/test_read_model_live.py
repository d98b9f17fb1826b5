"""Live migrations in the read model (real PostgreSQL): a migration's lag, the
source position applied last, its cutover's options and result, and the rows
of its sync and cutover phases, as histories the orchestrator and the
simulated phase worker make them; one event per batch (each batch reads the
rows the one before wrote) gives what one batch gives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from domain import (
    AbortCutover,
    Command,
    CutoverMigration,
    Event,
    Input,
    MigrationState,
    PauseMigration,
    ResumeMigration,
    StartMigration,
    decide,
    evolve,
    task_for,
)
from projections.batch import fold_and_write
from projections.queries import SELECT_MIGRATIONS
from projections.schema import apply_schema
from tests.support.phase_simulator import FINAL, LAG_BYTES, LAG_SECONDS, POSITION, answer
from tests.support.read_side import AT, SPEC

pytestmark = pytest.mark.integration
LIVE = replace(SPEC, cdc=True)


def story(mid: str, *commands: Command, table: str = "customers") -> list[Event]:
    """Started with `cdc` (source `table`), then `commands` one by one, each
    with what the simulated phase worker answers to the tasks it calls for."""
    spec = replace(LIVE, source_table=table)
    state, out = MigrationState(migration_id=mid), []
    for command in (StartMigration(command_id=f"c-{mid}", migration_id=mid, spec=spec), *commands):
        inputs: list[Input] = [command]
        while inputs:
            for event in decide(state, inputs.pop(0), AT):
                state = evolve(state, event)
                out.append(event)
                task = task_for(state, event)
                inputs.extend(answer(task) if task is not None else [])
    return out


def cutover(mid: str, n: int = 1, freeze: bool = True) -> CutoverMigration:
    return CutoverMigration(
        command_id=f"c-{mid}-cut-{n}", migration_id=mid, max_lag_bytes=1024, freeze=freeze
    )


async def project(url: str, events: Sequence[Event], one_by_one: bool = False) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await apply_schema(conn)
        for batch in [[e] for e in events] if one_by_one else [list(events)]:
            async with conn.transaction():
                await fold_and_write(conn, batch)


async def read(url: str, mid: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(f"{SELECT_MIGRATIONS} WHERE m.migration_id = %s".encode(), (mid,))
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


def phases(row: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {p["phase"]: (p["status"], p["reason"]) for p in row["phases"]}


async def test_a_syncing_migration_shows_its_lag_and_position(database_url: str) -> None:
    await project(database_url, story("m-sync"))

    row = await read(database_url, "m-sync")

    assert (row["status"], row["phase"]) == ("SYNCING", "sync")
    assert (row["lag_bytes"], row["lag_seconds"], row["position"]) == (
        LAG_BYTES,
        LAG_SECONDS,
        POSITION,
    )
    assert phases(row)["sync"] == ("RUNNING", None)
    assert phases(row)["reconcile"] == ("COMPLETED", None)
    assert (row["cutover"], row["cutover_result"], row["spec"]["cdc"]) == (None, None, True)


async def test_a_cutover_in_progress_shows_its_options_and_ends_the_sync_phase(
    database_url: str,
) -> None:
    await project(database_url, story("m-held", cutover("m-held"), table="held_items"))

    row = await read(database_url, "m-held")

    assert row["status"] == "CUTTING_OVER"
    assert row["cutover"] == {"max_lag_bytes": 1024, "max_lag_seconds": None, "freeze": True}
    assert phases(row)["sync"][0] == "COMPLETED"
    assert phases(row)["cutover"] == ("RUNNING", None)
    assert row["lag_bytes"] == LAG_BYTES


async def test_an_aborted_cutover_is_cancelled_and_the_sync_runs_again(database_url: str) -> None:
    aborted = AbortCutover(command_id="c-abort", migration_id="m-ab", reason="load spike")
    await project(database_url, story("m-ab", cutover("m-ab"), aborted, table="held_items"))

    row = await read(database_url, "m-ab")

    assert row["status"] == "SYNCING"
    assert phases(row) == {
        **{p: ("COMPLETED", None) for p in ("extract", "transform", "validate", "load")},
        "reconcile": ("COMPLETED", None),
        "sync": ("RUNNING", None),
        "cutover": ("CANCELLED", "aborted: load spike"),
    }


async def test_a_completed_cutover_keeps_its_result(database_url: str) -> None:
    history = story("m-cut", cutover("m-cut"))
    await project(database_url, history)

    row = await read(database_url, "m-cut")

    assert (row["status"], row["finished_at"] is not None) == ("COMPLETED", True)
    result = row["cutover_result"]
    assert result["position"] == FINAL and result["frozen"] is True
    assert result["source_checksum"] == result["target_checksum"]
    assert (row["lag_bytes"], row["lag_seconds"], row["position"]) == (0, 0.0, FINAL)
    assert phases(row)["cutover"][0] == "COMPLETED"
    assert [e.type for e in history[-3:]] == [
        "PhaseCompleted",
        "CutoverCompleted",
        "MigrationCompleted",
    ]
    assert result == asdict(history[-2].result)  # type: ignore[attr-defined]


async def test_a_schema_drift_pauses_the_migration_with_the_change(database_url: str) -> None:
    await project(database_url, story("m-drift", table="drift_items"))

    row = await read(database_url, "m-drift")

    assert (row["status"], row["reason"]) == ("PAUSED", "column note added to public.drift_items")
    assert phases(row)["sync"] == ("PAUSED", "column note added to public.drift_items")


async def test_a_drifted_migration_resumed_syncs_again(database_url: str) -> None:
    resumed = ResumeMigration(command_id="c-resume", migration_id="m-dr")
    await project(database_url, story("m-dr", resumed, table="drift_items"))

    row = await read(database_url, "m-dr")

    assert (row["status"], row["reason"], phases(row)["sync"]) == (
        "SYNCING",
        None,
        ("RUNNING", None),
    )


@pytest.mark.parametrize(
    "commands",
    [
        (),
        (PauseMigration(command_id="c-p", migration_id="m"),),
        (cutover("m"), AbortCutover(command_id="c-a", migration_id="m"), cutover("m", 2)),
    ],
    ids=["syncing", "paused", "cut-over-after-an-abort"],
)
async def test_one_event_per_batch_gives_the_rows_of_one_batch(
    database_url: str, commands: tuple[Command, ...]
) -> None:
    table = "held_items" if len(commands) > 1 else "customers"
    history = story("m", *commands, table=table)
    split = [replace(e, migration_id="m-split", event_id=f"m-split:{e.sequence}") for e in history]
    await project(database_url, history)
    await project(database_url, split, one_by_one=True)

    whole, one_by_one = await read(database_url, "m"), await read(database_url, "m-split")

    ignored = ("migration_id", "feed_version")
    assert {k: v for k, v in one_by_one.items() if k not in ignored} == {
        k: v for k, v in whole.items() if k not in ignored
    }

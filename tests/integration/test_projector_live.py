"""The projector in batches against the real broker and database: a SIGKILL
mid-batch loses and repeats nothing, rows equal a replay of the log, phases
and timestamps are kept, commits are signalled (NOTIFY), a forked sequence
quarantines its migration, and the API's role cannot write."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from api.app import api_database_url
from config import KafkaNames, Settings
from domain import (
    Event,
    Input,
    MigrationSpec,
    PauseMigration,
    PhaseHalted,
    PhaseProgressed,
    ResumeMigration,
    StartMigration,
    Status,
    replay,
)
from projections.projector import Projector
from projections.store import CHANNEL
from tests.support.event_log import timed
from tests.support.phase_simulator import SNAPSHOT
from tests.support.processes import ROOT, process_env
from tests.support.read_side import AT, SPEC, lifecycle, prepare_schema, publish

pytestmark = pytest.mark.integration


async def scalar(settings: Settings, sql: str, *args: object) -> Any:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        try:
            row = await (await conn.execute(sql.encode(), args)).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return row[0] if row else None


async def rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = psycopg.AsyncClientCursor(conn, row_factory=psycopg.rows.dict_row)
        await cur.execute(sql.encode())
        return await cur.fetchall()


async def project_until(settings: Settings, sql: str, expected: object) -> None:
    """Run a projector in this process until `sql` gives `expected`."""
    projector = Projector(settings)
    task = asyncio.create_task(projector.run())
    try:
        async with asyncio.timeout(120):
            while await scalar(settings, sql) != expected:
                if task.done():
                    task.result()
                await asyncio.sleep(0.1)
    finally:
        projector.stop()
        await task


def histories(count: int) -> list[list[Event]]:
    flaky = MigrationSpec(
        source_connection="legacy",
        source_table="flaky_orders",
        source_key="id",
        target_connection="warehouse",
        target_table="orders",
    )
    return [
        lifecycle(
            f"m-{i:03d}",
            flaky
            if i % 4 == 0
            else MigrationSpec(
                source_connection="legacy",
                source_table="customers",
                source_key="id",
                target_connection="warehouse",
                target_table="customers",
            ),
        )
        for i in range(count)
    ]


def interleaved(per_migration: Sequence[Sequence[Event]]) -> list[Event]:
    """Round robin over the migrations: every batch touches many of them."""
    longest = max(len(h) for h in per_migration)
    return [h[i] for i in range(longest) for h in per_migration if i < len(h)]


async def assert_rows_equal_replay(settings: Settings, per_migration: list[list[Event]]) -> None:
    stored = {r["migration_id"]: r for r in await rows(settings, "SELECT * FROM migrations")}
    assert len(stored) == len(per_migration)
    for history in per_migration:
        expected = replay(history[0].migration_id, history)
        row = stored[expected.migration_id]
        assert (row["version"], row["status"], row["phase"]) == (
            expected.version,
            expected.status.value,
            expected.phase,
        )
        assert (row["rows_done"], row["checkpoint"], row["reason"]) == (
            expected.rows_done,
            expected.checkpoint,
            expected.reason,
        )


async def test_a_projector_killed_mid_batch_resumes_without_loss_or_duplicate(
    settings: Settings, topics: KafkaNames, tmp_path: Path
) -> None:
    per_migration = histories(60)
    events = interleaved(per_migration)
    await publish(settings, topics, events)
    env = {
        **process_env(settings),
        "PROJECTOR_BATCH_MAX": "100",
        "FAULT_PROJECTOR": "kill_before_commit",
        "FAULT_PROJECTOR_BATCH": "4",
    }
    with (tmp_path / "projector.log").open("wb") as log:
        killed = subprocess.run(  # noqa: ASYNC221 (the test waits for the process, nothing else)
            [sys.executable, "-m", "projections"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    assert killed.returncode == -signal.SIGKILL
    applied = await scalar(settings, "SELECT count(*) FROM migration_events")
    offsets = await scalar(settings, "SELECT sum(next_offset) FROM projection_offsets")
    assert 0 < applied < len(events)  # some batches committed, the killed one did not
    assert applied == offsets  # rows and offsets moved together

    await project_until(settings, "SELECT count(*) FROM migration_events", len(events))

    assert await scalar(settings, "SELECT sum(next_offset) FROM projection_offsets") == len(events)
    gapless = await scalar(
        settings,
        "SELECT bool_and(n = top) FROM (SELECT count(*) n, max(sequence) top"
        " FROM migration_events GROUP BY migration_id) s",
    )
    assert gapless is True
    await assert_rows_equal_replay(settings, per_migration)


async def test_phases_timestamps_and_the_feed_version_are_kept(
    settings: Settings, topics: KafkaNames
) -> None:
    done, flaky = histories(2)[1], histories(1)[0]
    await publish(settings, topics, [*done, *flaky])

    await project_until(settings, "SELECT count(*) FROM migration_events", len(done) + len(flaky))

    phases = await rows(settings, "SELECT * FROM migration_phases ORDER BY migration_id, phase")
    by_key = {(p["migration_id"], p["phase"]): p for p in phases}
    assert {p["status"] for p in phases if p["migration_id"] == "m-001"} == {"COMPLETED"}
    assert len([p for p in phases if p["migration_id"] == "m-001"]) == 5
    assert (by_key["m-001", "load"]["rows_done"], by_key["m-001", "load"]["score"]) == (100, 1.0)
    assert by_key["m-000", "transform"]["status"] == "FAILED"
    assert by_key["m-000", "transform"]["checkpoint"] == "40"
    migrations = {r["migration_id"]: r for r in await rows(settings, "SELECT * FROM migrations")}
    assert migrations["m-001"]["finished_at"] is not None
    assert migrations["m-000"]["status"] == Status.FAILED.value
    assert migrations["m-001"]["started_at"] == migrations["m-001"]["created_at"]
    assert await scalar(settings, "SELECT version FROM feed_version") >= 2
    assert sorted(r["feed_version"] for r in migrations.values()) == sorted(
        {r["feed_version"] for r in migrations.values()}
    )


async def test_each_commit_is_signalled_with_the_migrations_and_their_versions(
    settings: Settings, topics: KafkaNames
) -> None:
    await prepare_schema(settings)
    history = lifecycle("m-note")
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener:
        await listener.execute(f"LISTEN {CHANNEL}")
        await publish(settings, topics, history)
        await project_until(settings, "SELECT max(version) FROM migrations", len(history))

        heard: dict[str, int] = {}
        async for note in listener.notifies(timeout=5, stop_after=100):
            heard.update(json.loads(note.payload)["m"])
            if heard.get("m-note") == len(history):
                break

    assert heard["m-note"] == len(history)


async def test_a_repeated_sequence_with_other_content_quarantines_its_migration(
    settings: Settings, topics: KafkaNames
) -> None:
    history = lifecycle("m-fork")[:3]
    forked = replace(history[1], causation_id="c-someone-else")
    await publish(settings, topics, [*history, forked])

    await project_until(
        settings, "SELECT count(*) FROM migrations WHERE quarantine_reason IS NOT NULL", 1
    )

    reason = "SELECT quarantine_reason FROM migrations WHERE migration_id = 'm-fork'"
    assert await scalar(settings, reason) == "fork: sequence 2 seen twice with different events"
    assert await scalar(settings, "SELECT count(*) FROM migration_events") == 3


async def test_the_duration_of_a_migration_is_observed_from_its_event_times(
    settings: Settings, topics: KafkaNames
) -> None:
    history = lifecycle("m-timed", at="2026-01-01T00:00:00.000+00:00")
    last = history[-1]
    ended = replace(last, occurred_at="2026-01-01T00:02:00.000+00:00")
    before = _sample("migrator_migration_duration_seconds_bucket", outcome="completed", le="120.0")
    await publish(settings, topics, [*history[:-1], ended])

    await project_until(settings, "SELECT max(version) FROM migrations", len(history))

    after = _sample("migrator_migration_duration_seconds_bucket", outcome="completed", le="120.0")
    below = _sample("migrator_migration_duration_seconds_bucket", outcome="completed", le="60.0")
    assert after == before + 1
    assert below == before  # 120 s: in the 120 s bucket, not the 60 s one


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_api_role_reads_the_read_model_and_cannot_write_it(
    settings: Settings, topics: KafkaNames
) -> None:
    await prepare_schema(settings)
    dsn = api_database_url(settings)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        user = await (await conn.execute("SELECT current_user")).fetchone()
        read_only = await (await conn.execute("SHOW default_transaction_read_only")).fetchone()
        await conn.execute("SELECT count(*) FROM migrations")
        assert (user, read_only) == (("migrator_api",), ("on",))
        await conn.execute("SET default_transaction_read_only = off")  # grants alone forbid it
        for sql in (
            "INSERT INTO migrations (migration_id, status, version, created_at, updated_at)"
            " VALUES ('x', 'RUNNING', 1, now(), now())",
            "UPDATE projection_offsets SET next_offset = 0",
            "DELETE FROM migration_events",
            "CREATE TABLE intruder (id int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(sql.encode())


async def test_a_runs_pace_is_measured_from_its_stored_start_across_batches(
    settings: Settings, topics: KafkaNames
) -> None:
    start = StartMigration(command_id="c-pace", migration_id="m-pace", spec=SPEC)
    first = PhaseProgressed(
        result_id="r-1",
        migration_id="m-pace",
        phase="extract",
        run=1,
        rows_done=50,
        rows_total=100,
        checkpoint="50",
        bytes_done=5000,
        snapshot=SNAPSHOT,
    )
    pause = PauseMigration(command_id="c-pause", migration_id="m-pace")
    halt = PhaseHalted(result_id="h", migration_id="m-pace", phase="extract", run=1)
    resume = ResumeMigration(command_id="c-resume", migration_id="m-pace")
    again = replace(first, result_id="r-2", run=2, rows_done=90, checkpoint="90", bytes_done=9000)
    again = replace(again, snapshot=None)  # the snapshot named before is kept
    inputs: list[tuple[float, Input]] = [(0, start), (10, first), (12, pause), (15, halt)]
    history = timed("m-pace", *inputs, (60, resume), (80, again))
    at_pause, after = history[:5], history[5:]

    await publish(settings, topics, at_pause)
    await project_until(settings, "SELECT max(version) FROM migrations", len(at_pause))
    paused = await rows(settings, "SELECT * FROM migration_phases")
    await publish(settings, topics, after)  # folded onto the rows the first projector stored
    await project_until(settings, "SELECT max(version) FROM migrations", len(history))
    (resumed,) = await rows(settings, "SELECT * FROM migration_phases")

    assert [(p["status"], p["rows_per_second"], p["eta_seconds"]) for p in paused] == [
        ("PAUSED", 5.0, None)
    ]
    assert (resumed["run_rows_from"], resumed["run_bytes_from"]) == (50, 5000)
    assert (resumed["rows_per_second"], resumed["bytes_per_second"]) == (2.0, 200.0)
    assert (resumed["eta_seconds"], resumed["bytes_done"]) == (5.0, 9000)
    assert resumed["snapshot"] == asdict(SNAPSHOT)
    assert resumed["eta_at"] == datetime.fromisoformat(AT) + timedelta(seconds=85)

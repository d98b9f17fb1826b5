"""Extract reads one snapshot of the source, against real PostgreSQL
databases (no Kafka): a table written to while it is copied arrives as it was
when the snapshot was taken and reconciles; a resumed extract whose snapshot
is gone says so and copies again from the start in a new one."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from domain import MigrationSpec, SnapshotRef
from domain.state import PHASES
from streams.dataplane import runner
from streams.dataplane.context import Finished, Progress, Stopped
from streams.dataplane.database import Databases
from streams.dataplane.sql import staging_name
from tests.support.phases import legacy_and_warehouse, phase_context, run_phase
from tests.support.stack import Stack
from tests.support.tables import fresh_database

pytestmark = pytest.mark.integration

ROWS = 200  # keys 2, 4, ... 400: odd keys are free for rows written meanwhile
ITEMS = f"""
CREATE TABLE items (id int PRIMARY KEY, name text, qty int, at timestamptz);
INSERT INTO items
  SELECT 2 * g, 'item ' || g, g, '2026-01-01 00:00+00'::timestamptz + g * interval '1 h'
  FROM generate_series(1, {ROWS}) AS g;
"""
SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="items",
    source_key="id",
    target_connection="warehouse",
    target_table="items",
    min_score=0.0,
    batch_size=10,
)


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(ITEMS)
        yield url


def fetch(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def staged(target_url: str) -> list[tuple[Any, ...]]:
    rows = '"' + staging_name("m-1", "rows").replace(".", '"."') + '"'
    return fetch(target_url, f"SELECT * FROM {rows} ORDER BY id")


def extract_checkpoints(target_url: str) -> list[dict[str, Any]]:
    """The position of each of extract's chunks, by chunk."""
    found = fetch(
        target_url,
        "SELECT position FROM migrator_state.checkpoints WHERE phase = 'extract' ORDER BY slice",
    )
    return [dict(position) for (position,) in found]


def extract_checkpoint(target_url: str) -> dict[str, Any]:
    return extract_checkpoints(target_url)[0]


async def keepers_gone(url: str) -> None:
    """Wait until no keeper's session is left on the database at `url`."""
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'migrator-snapshot-keeper' AND datname = current_database()"
    )
    async with asyncio.timeout(30):
        while fetch(url, query) != [(0,)]:  # noqa: ASYNC110 (polling another process's state)
            await asyncio.sleep(0.05)


class Writer:
    """After each batch of the extract, a few writes to the source: rows not
    copied yet updated and deleted, rows inserted among them and past them,
    and a row copied already updated. 2 inserts for 1 delete: the count moves."""

    def __init__(self, url: str, writes: int) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.writes, self.done = writes, 0
        self.reports: list[dict[str, Any]] = []
        self.counts: list[tuple[int, int]] = []  # (rows done, rows total) per report
        self.snapshots: list[SnapshotRef | None] = []  # the snapshot each report names

    def __call__(self, progress: Progress) -> None:
        self.reports.append(json.loads(progress.checkpoint))
        self.counts.append((progress.rows_done, progress.rows_total))
        self.snapshots.append(progress.snapshot)
        if self.done == self.writes:
            return
        self.done += 1
        n = self.done
        self.conn.execute(
            "UPDATE items SET qty = -1, name = 'changed' WHERE id = %s", (400 - 2 * n,)
        )
        self.conn.execute("UPDATE items SET qty = -2 WHERE id = %s", (2 * n,))
        self.conn.execute("DELETE FROM items WHERE id = %s", (300 - 2 * n,))
        self.conn.execute(
            "INSERT INTO items VALUES (%s, 'new', 0, now()), (%s, 'new', 0, now())",
            (399 - 2 * n, 1000 + n),
        )


async def test_writes_during_extract_are_not_copied_and_reconcile_passes(
    databases: Databases, source_url: str, target_url: str
) -> None:
    before = fetch(source_url, "SELECT * FROM items ORDER BY id")
    writer = Writer(source_url, writes=12)
    ctx = await phase_context(databases, SPEC, "extract", report=writer)

    assert await runner.run(ctx) == Finished(ROWS)

    assert writer.done == 12  # the source changed under the copy, 12 batches long
    assert fetch(source_url, "SELECT count(*) FROM items") == [(ROWS + 12,)]
    assert staged(target_url) == before  # the source as it was at the snapshot
    snapshots = [p["snapshot"] for p in extract_checkpoints(target_url)]
    assert len(writer.reports) == ROWS // SPEC.batch_size  # a report after each chunk
    assert all(s == snapshots[0] for s in snapshots)  # one snapshot, named by every chunk
    assert set(snapshots[0]) == {"id", "taken_at", "xids", "lsn"}
    named = {k: v for k, v in snapshots[0].items() if k != "xids"}
    assert set(writer.snapshots) == {SnapshotRef(**named)}  # what the progress events carry
    # progress counts up to the snapshot's row count, against that count
    assert {total for _, total in writer.counts} == {ROWS}
    assert [done for done, _ in writer.counts] == sorted(done for done, _ in writer.counts)
    assert 0 < writer.counts[0][0] < ROWS and writer.counts[-1][0] == ROWS
    outcomes = [await run_phase(databases, SPEC, phase) for phase in PHASES[1:]]
    assert outcomes[-1] == Finished(ROWS)  # reconciled against the snapshot
    assert fetch(target_url, "SELECT * FROM items ORDER BY id") == before
    ((result,),) = fetch(
        target_url, "SELECT result FROM migrator_state.checkpoints WHERE phase = 'reconcile'"
    )
    assert result["source_rows"] == ROWS
    assert result["source_snapshot"] == snapshots[0]["id"]
    assert result["source_checksum"] == result["target_checksum"]


async def stopped_after_three_chunks(databases: Databases) -> None:
    first = await phase_context(databases, SPEC, "extract")

    def stop_after_three(progress: Progress) -> None:
        if progress.rows_done >= 30:
            first.stop.set()

    first.report = stop_after_three
    assert isinstance(await runner.run(first), Stopped)


@pytest.fixture
async def kept(source_url: str, target_url: str) -> AsyncIterator[Databases]:
    """The databases, with every extract's snapshot held by a keeper process
    (this table is below the size that gets one by default)."""
    async with legacy_and_warehouse(source_url, target_url, snapshot_keeper_min_bytes=0) as found:
        yield found


async def test_a_resumed_extract_goes_on_in_its_snapshot_copying_only_what_is_left(
    kept: Databases, source_url: str, target_url: str
) -> None:
    databases = kept
    await stopped_after_three_chunks(databases)
    before = fetch(source_url, "SELECT * FROM items ORDER BY id")
    held = extract_checkpoint(target_url)["snapshot"]["id"]
    copied = staged(target_url)
    assert len(copied) == 30
    # The keeper holds the snapshot past the run: rows change meanwhile, copied or not.
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("UPDATE items SET name = 'after the pause' WHERE id IN (2, 398)")
        conn.execute("DELETE FROM items WHERE id = 200")

    assert await run_phase(databases, SPEC, "extract", run=2) == Finished(ROWS)

    assert {p["snapshot"]["id"] for p in extract_checkpoints(target_url)} == {held}
    assert "restarted" not in extract_checkpoint(target_url)
    assert staged(target_url) == before  # as the snapshot saw it
    attempts = fetch(
        target_url,
        "SELECT slice, count(*) FROM migrator_state.chunk_runs WHERE phase = 'extract'"
        " GROUP BY slice HAVING count(*) > 1",
    )
    assert attempts == []  # no chunk copied twice: the three done were kept


@pytest.mark.parametrize("held_by", ["keeper", "run"])
async def test_a_resumed_extract_whose_snapshot_is_gone_copies_again_in_a_new_one(
    held_by: str,
    kept: Databases,
    databases: Databases,
    source_url: str,
    target_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if held_by == "keeper":
        databases = kept
    await stopped_after_three_chunks(databases)
    lost = extract_checkpoint(target_url)["snapshot"]["id"]
    assert len(staged(target_url)) == 30
    # A small table's snapshot ended with its run; a keeper's ends as when the
    # source restarts. A row copied already changes meanwhile.
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'migrator-snapshot-keeper' AND datname = current_database()"
        )
    await keepers_gone(source_url)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("UPDATE items SET name = 'after the pause' WHERE id = 2")
    reports: list[Progress] = []
    second = await phase_context(databases, SPEC, "extract", run=2, report=reports.append)

    with caplog.at_level(logging.WARNING, logger="streams.dataplane.extract"):
        assert await runner.run(second) == Finished(ROWS)

    position = extract_checkpoint(target_url)
    new = position["snapshot"]["id"]
    why = f"snapshot {lost} lost (no longer held): re-copying from the start in snapshot {new}"
    assert new != lost
    assert position["restarted"] == why
    assert reports[0].rows_done == 0 and reports[0].rows_total == ROWS  # reported at once
    assert any(why in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert staged(target_url) == fetch(source_url, "SELECT * FROM items ORDER BY id")
    batches = fetch(
        target_url,
        "SELECT after_key, upto_key, rows FROM migrator_state.batches"
        " WHERE phase = 'extract' ORDER BY slice",
    )
    # every chunk of the new plan copied once: from the start, each where the last ended
    assert len(batches) == len(extract_checkpoints(target_url))
    assert batches[0][0] is None and batches[-1][1] is None
    assert all(a[1] == b[0] for a, b in itertools.pairwise(batches))
    assert sum(b[2] for b in batches) == ROWS

"""Change capture against real PostgreSQL (no Kafka): the source in a cluster
of the tests' own with wal_level=logical (scripts/pg/server), the target in
the stack's. The copy's snapshot and the slot's changes are exactly the
source's history under concurrent writes; every change kind applies once,
large TOASTed values included; a crash between the target's commit and the
slot's advance applies nothing twice; a DDL stops capture naming it; a
source that cannot be captured is refused before the copy."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from domain import CancelPhase, CutoverOptions
from streams.dataplane import runner
from streams.dataplane.cdc import guards, slot_name, slot_retained_bytes, slots
from streams.dataplane.cdc.apply import Routes
from streams.dataplane.cdc.capture import Capture
from streams.dataplane.context import Finished, Progress, Stopped
from streams.dataplane.database import Databases
from streams.dataplane.errors import CaptureRefused, CutoverMismatch, SchemaDrifted
from tests.support.cdc import catch_up, cdc_spec, create_items, rows, write
from tests.support.pg_cluster import Cluster
from tests.support.phases import legacy_and_warehouse, phase_context, run_phase
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2000
COPY = ("extract", "transform", "validate", "load", "reconcile")


@pytest.fixture
def source_url(crashable: Cluster, unique: str) -> Iterator[str]:
    with crashable.database(f"cdc_{unique}") as url:
        create_items(url, ROWS)
        yield url
        with psycopg.connect(url, autocommit=True) as conn:  # a slot keeps its database
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = current_database()"
            )


@pytest.fixture(params=["holder", "keeper"])
async def databases(
    request: pytest.FixtureRequest, source_url: str, target_url: str
) -> AsyncIterator[Databases]:
    """Both ways a snapshot is held: by the run (a small table) or by a keeper."""
    least = 0 if request.param == "keeper" else 1 << 40
    async with legacy_and_warehouse(
        source_url, target_url, snapshot_keeper_min_bytes=least
    ) as found:
        yield found


async def copied(dbs: Databases, migration_id: str) -> None:
    for phase in COPY:
        outcome = await run_phase(dbs, cdc_spec(), phase, migration_id=migration_id)
        assert isinstance(outcome, Finished), (phase, outcome)


async def capture_of(dbs: Databases, migration_id: str) -> Capture:
    return await Capture.open(await phase_context(dbs, cdc_spec(), "sync", 1, migration_id))


async def test_the_snapshot_and_the_changes_after_it_are_the_source_exactly(
    databases: Databases, source_url: str, target_url: str
) -> None:
    # given a source written all through its copy
    stop = asyncio.Event()
    writer = asyncio.ensure_future(write(source_url, stop))
    await asyncio.sleep(0.3)
    await copied(databases, "m-live")
    await asyncio.sleep(0.3)
    stop.set()
    made = await writer
    # when capture catches up
    capture = await capture_of(databases, "m-live")
    stepped = await catch_up(capture, source_url)
    # then the target is the source row by row, every change applied once
    assert made > 0 and stepped.position.changes > 0
    assert rows(target_url, "items_copy") == rows(source_url, "items")
    assert stepped.lag_seconds == 0


async def test_every_change_kind_applies_once_and_toasted_values_survive(
    databases: Databases, source_url: str, target_url: str
) -> None:
    await copied(databases, "m-kinds")
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("UPDATE items SET n = -1 WHERE id = 10")  # its big value is untouched
        conn.execute("UPDATE items SET big = repeat('x', 100000) WHERE id = 20")
        conn.execute("UPDATE items SET id = 100000 WHERE id = 30")  # a key moves
        conn.execute("DELETE FROM items WHERE id IN (1, 2, 3)")
        conn.execute("INSERT INTO items (name, n, big) VALUES ('new', 7, repeat('y', 90000))")
    capture = await capture_of(databases, "m-kinds")
    stepped = await catch_up(capture, source_url)
    assert rows(target_url, "items_copy") == rows(source_url, "items")
    assert stepped.position.changes == 7
    with psycopg.connect(target_url) as conn:
        kept = conn.execute("SELECT length(big) FROM items_copy WHERE id = 10").fetchone()
    assert kept is not None and kept[0] == 32 * 400  # not nulled by the update
    # a truncate empties the target; rows after it arrive
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("TRUNCATE items")
        conn.execute("INSERT INTO items (name, n) VALUES ('after', 1)")
    stepped = await catch_up(capture, source_url)
    assert rows(target_url, "items_copy") == rows(source_url, "items")
    assert stepped.position.truncated


async def test_a_crash_between_commit_and_advance_applies_nothing_twice(
    databases: Databases, source_url: str, target_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await copied(databases, "m-crash")
    with psycopg.connect(source_url, autocommit=True) as conn:
        for i in range(50):
            conn.execute("INSERT INTO items (name, n) VALUES (%s, %s)", (f"c{i}", i))
            conn.execute("UPDATE items SET n = n + 1 WHERE id = %s", (i + 1,))
    capture = await capture_of(databases, "m-crash")
    advance = slots.advance

    async def crash(*_: object) -> None:
        raise RuntimeError("killed after the target's commit")

    monkeypatch.setattr(slots, "advance", crash)
    with pytest.raises(RuntimeError):
        await capture.step()
    monkeypatch.setattr(slots, "advance", advance)
    # the target holds the changes and their position; the slot has not moved
    assert (await capture.position()).changes == 100
    with psycopg.connect(source_url) as conn:
        behind = conn.execute(
            "SELECT count(*) FROM pg_logical_slot_peek_changes(%s, NULL, NULL,"
            " 'format-version', '2')",
            (capture.slot,),
        ).fetchone()
    assert behind is not None and behind[0] > 100
    stepped = await catch_up(capture, source_url)
    assert stepped.position.changes == 100  # the same transactions, skipped
    assert rows(target_url, "items_copy") == rows(source_url, "items")


async def test_a_ddl_on_the_source_stops_capture_naming_the_change(
    databases: Databases, source_url: str, target_url: str
) -> None:
    await copied(databases, "m-drift")
    capture = await capture_of(databases, "m-drift")
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("UPDATE items SET n = 0 WHERE id = 5")
        conn.execute("ALTER TABLE items ADD COLUMN colour text")
        conn.execute("INSERT INTO items (name, n, colour) VALUES ('red', 1, 'red')")
    with pytest.raises(SchemaDrifted, match="column colour added"):
        await capture.step()
    # what came before the DDL is applied, nothing after it
    position = await capture.position()
    assert position.changes == 1
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT n FROM items_copy WHERE id = 5").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM items_copy WHERE name = 'red'").fetchone() == (0,)


async def test_a_ddl_no_change_shows_is_found_in_the_catalog(
    databases: Databases, source_url: str
) -> None:
    await copied(databases, "m-retype")
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE items ALTER COLUMN n TYPE bigint")
    ctx = await phase_context(databases, cdc_spec(), "sync", 1, "m-retype")
    with pytest.raises(SchemaDrifted, match="column n retyped from integer to bigint"):
        await runner.run(ctx)


async def test_sync_reports_lag_and_cancel_drops_the_slot(
    databases: Databases, source_url: str, target_url: str
) -> None:
    await copied(databases, "m-sync")
    seen: list[Progress] = []
    applied = asyncio.Event()

    def heard(progress: Progress) -> None:
        seen.append(progress)
        if progress.rows_done >= 1:
            applied.set()

    ctx = await phase_context(databases, cdc_spec(), "sync", 1, "m-sync", report=heard)
    job = asyncio.ensure_future(runner.run(ctx))
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("INSERT INTO items (name, n) VALUES ('s', 1)")
    await applied.wait()
    assert seen[-1].lag_bytes is not None and seen[-1].position is not None
    held = await slot_retained_bytes(await databases.get("legacy"))
    assert slot_name("m-sync") in held
    ctx.stop.set()
    outcome = await job
    assert isinstance(outcome, Stopped) and outcome.checkpoint is not None
    assert json.loads(outcome.checkpoint)["changes"] == 1
    cancel = CancelPhase(task_id="c", migration_id="m-sync", run=1, spec=cdc_spec())
    await runner.cancel(cancel, await databases.get("warehouse"), await databases.get("legacy"))
    assert slot_name("m-sync") not in await slot_retained_bytes(await databases.get("legacy"))


async def test_cutover_with_a_freeze_ends_equal_and_leaves_the_source_frozen(
    databases: Databases, source_url: str, target_url: str
) -> None:
    await copied(databases, "m-cut")
    stop = asyncio.Event()
    writer = asyncio.ensure_future(write(source_url, stop, seed=2))
    await asyncio.sleep(0.5)
    spec = cdc_spec()
    ctx = await phase_context(databases, spec, "cutover", 1, "m-cut")
    ctx.task = replace(ctx.task, cutover=CutoverOptions(freeze=True))
    try:
        outcome = await runner.run(ctx)
    finally:
        stop.set()
        await asyncio.gather(writer, return_exceptions=True)  # its writes are refused now
    assert isinstance(outcome, Finished) and outcome.cutover is not None
    result = outcome.cutover
    assert result.frozen and result.source_rows == result.target_rows
    assert result.source_checksum == result.target_checksum
    assert result.rows_verified > 0
    assert rows(target_url, "items_copy") == rows(source_url, "items")
    assert slot_name("m-cut") not in await slot_retained_bytes(await databases.get("legacy"))
    with (
        psycopg.connect(source_url, autocommit=True) as conn,
        pytest.raises(
            psycopg.errors.ReadOnlySqlTransaction, match="frozen for the cutover of migration m-cut"
        ),
    ):
        conn.execute("INSERT INTO items (name, n) VALUES ('late', 1)")


async def test_a_cutover_stopped_before_its_switch_leaves_the_source_writable(
    databases: Databases, source_url: str
) -> None:
    await copied(databases, "m-abort")
    ctx = await phase_context(databases, cdc_spec(), "cutover", 1, "m-abort")
    # a lag no capture reaches: it waits until stopped
    ctx.task = replace(ctx.task, cutover=CutoverOptions(freeze=True, max_lag_bytes=-1))
    job = asyncio.ensure_future(runner.run(ctx))
    await asyncio.sleep(1.5)
    ctx.stop.set()
    assert isinstance(await job, Stopped)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("INSERT INTO items (name, n) VALUES ('writable', 1)")
    assert slot_name("m-abort") in await slot_retained_bytes(await databases.get("legacy"))


async def test_a_source_that_cannot_be_captured_is_refused_before_the_copy(
    databases: Databases, source_url: str, stack: Stack
) -> None:
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE loose (id int, v text)")  # no primary key
        conn.execute("CREATE TABLE blind (id int PRIMARY KEY)")
        conn.execute("ALTER TABLE blind REPLICA IDENTITY NOTHING")
        conn.execute("CREATE TABLE full_identity (id int, v text)")
        conn.execute("ALTER TABLE full_identity REPLICA IDENTITY FULL")
    for table, why in (("loose", "no primary key"), ("blind", "REPLICA IDENTITY NOTHING")):
        outcome = run_phase(databases, cdc_spec(source_table=table), "extract", migration_id=table)
        with pytest.raises(CaptureRefused, match=why):
            await outcome
    with psycopg.connect(source_url, autocommit=True) as conn:
        await_ok = conn.execute("SELECT 1")  # the connection is usable after refusals
        assert await_ok.fetchone() == (1,)
    async with await psycopg.AsyncConnection.connect(source_url, autocommit=True) as conn:
        await guards.check_identity(conn, "full_identity", ["id"])
        with pytest.raises(CaptureRefused, match="output plugin no_such_plugin"):
            await guards.check_plugin(conn, "no_such_plugin")
    async with await psycopg.AsyncConnection.connect(source_url, autocommit=True) as conn:
        await guards.check_wal_level(conn)  # the project's clusters run with wal_level = logical
    assert "wal_level = replica;" in str(guards.wal_level_problem("replica"))
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS cdc_reader")
        conn.execute("CREATE ROLE cdc_reader LOGIN")
    try:
        reader = psycopg.conninfo.make_conninfo(source_url, user="cdc_reader")
        async with await psycopg.AsyncConnection.connect(reader, autocommit=True) as conn:
            with pytest.raises(CaptureRefused, match="cdc_reader may not create replication"):
                await guards.check_privilege(conn)
    finally:
        with psycopg.connect(source_url, autocommit=True) as conn:
            conn.execute("DROP ROLE cdc_reader")
    with psycopg.connect(source_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()
    assert left == (0,)  # no slot was made for a refused copy


def test_a_mapping_that_computes_a_column_is_refused_for_capture() -> None:
    from domain.spec import parse_mapping

    mapping = parse_mapping({"label": {"from": "name", "case": "upper"}, "amount": "n"})
    with pytest.raises(CaptureRefused, match="computes label"):
        Routes.of(mapping, "id", ["id", "name", "n", "big"], "items_copy")
    plain = Routes.of(
        parse_mapping({"amount": "n", "big": None}), "id", ["id", "name", "n", "big"], "t"
    )
    assert plain.columns == {"id": "id", "name": "name", "n": "amount"}


# A phase worker in miniature: it runs the sync phase of a migration until killed.
SYNCING = """
import asyncio, sys
from streams.dataplane import runner
from tests.support.cdc import cdc_spec
from tests.support.phases import legacy_and_warehouse, phase_context

async def main() -> None:
    async with legacy_and_warehouse(sys.argv[1], sys.argv[2]) as dbs:
        await runner.run(await phase_context(dbs, cdc_spec(), "sync", 1, sys.argv[3]))

asyncio.run(main())
"""


async def test_apply_killed_mid_way_resumes_from_its_position_applying_nothing_twice(
    databases: Databases, source_url: str, target_url: str
) -> None:
    # given a copy, then 10,100 changes in 200 transactions
    await copied(databases, "m-kill")
    made = 0
    with psycopg.connect(source_url, autocommit=True) as conn:
        for _ in range(100):
            made += conn.execute(
                "INSERT INTO items (name, n) SELECT 'k', g FROM generate_series(1, 100) g"
            ).rowcount
            made += conn.execute(
                "UPDATE items SET n = n + 1 WHERE id = (SELECT max(id) FROM items)"
            ).rowcount
    # when a process applying them is killed (-9) once it has applied some
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SYNCING,
        source_url,
        target_url,
        "m-kill",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        while applied(target_url, "m-kill") == 0:
            assert proc.returncode is None, "the applying process ended by itself"
            await asyncio.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL
        await proc.wait()
    part = applied(target_url, "m-kill")
    # then capture resumes from the stored position: every change once
    stepped = await catch_up(await capture_of(databases, "m-kill"), source_url)
    assert made == 10_100
    assert 0 < part < made
    assert stepped.position.changes == made
    assert rows(target_url, "items_copy") == rows(source_url, "items")


def applied(target_url: str, migration_id: str) -> int:
    with psycopg.connect(target_url) as conn:
        found = conn.execute(
            "SELECT changes FROM migrator_state.cdc_positions WHERE migration_id = %s",
            (migration_id,),
        ).fetchone()
    return int(found[0]) if found else 0


async def test_changes_go_through_a_mapping_of_renames_and_drops(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = cdc_spec(mapping={"item_id": "id", "label": "name", "big": None})
    for phase in COPY:
        assert isinstance(await run_phase(databases, spec, phase, migration_id="m-map"), Finished)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("UPDATE items SET name = 'renamed', big = 'not copied' WHERE id = 7")
        conn.execute("UPDATE items SET id = 200000 WHERE id = 8")
        conn.execute("DELETE FROM items WHERE id = 9")
        conn.execute("INSERT INTO items (name, n, big) VALUES ('mapped', 3, 'dropped')")
    ctx = await phase_context(databases, spec, "sync", 1, "m-map")
    await catch_up(await Capture.open(ctx), source_url)
    with psycopg.connect(source_url) as conn:
        theirs = conn.execute("SELECT id, name, n FROM items ORDER BY id").fetchall()
    with psycopg.connect(target_url) as conn:
        ours = conn.execute("SELECT item_id, label, n FROM items_copy ORDER BY item_id").fetchall()
        shape = conn.execute(
            "SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute"
            " WHERE attrelid = 'items_copy'::regclass AND attnum > 0 AND NOT attisdropped"
        ).fetchone()
    assert ours == theirs
    assert shape == (["item_id", "label", "n"],)  # big dropped, id and name renamed


async def test_cutover_sets_the_targets_sequences_as_the_sources(
    databases: Databases, source_url: str, target_url: str
) -> None:
    with psycopg.connect(target_url, autocommit=True) as conn:  # a target with its own sequence
        conn.execute(
            "CREATE TABLE items_copy (id bigserial PRIMARY KEY, name text NOT NULL,"
            " n int NOT NULL, big text)"
        )
    await copied(databases, "m-seq")
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("INSERT INTO items (name, n) SELECT 'more', g FROM generate_series(1, 10) g")
    ctx = await phase_context(databases, cdc_spec(), "cutover", 1, "m-seq")
    ctx.task = replace(ctx.task, cutover=CutoverOptions(max_lag_bytes=1 << 30))
    outcome = await runner.run(ctx)
    assert isinstance(outcome, Finished) and outcome.cutover is not None
    assert outcome.cutover.sequences_synced == 1 and not outcome.cutover.frozen
    assert outcome.cutover.source_checksum == outcome.cutover.target_checksum
    with psycopg.connect(target_url, autocommit=True) as conn:
        following = conn.execute("SELECT nextval('items_copy_id_seq')").fetchone()
    assert following == (ROWS + 11,)
    # a repeated task of the same cutover answers with the same result
    assert await runner.run(ctx) == outcome


async def test_a_composite_key_is_captured_and_verified(
    databases: Databases, source_url: str, target_url: str
) -> None:
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (tenant int, id int, v text, PRIMARY KEY (tenant, id))")
        conn.execute("INSERT INTO orders SELECT g % 3, g, 'v' || g FROM generate_series(1, 300) g")
    spec = cdc_spec(source_table="orders", source_key="tenant, id", target_table="orders_copy")
    for phase in COPY:
        assert isinstance(await run_phase(databases, spec, phase, migration_id="m-two"), Finished)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("UPDATE orders SET v = 'changed' WHERE tenant = 1 AND id < 50")
        conn.execute("UPDATE orders SET tenant = 9 WHERE tenant = 2 AND id = 5")
        conn.execute("DELETE FROM orders WHERE tenant = 0 AND id < 30")
    ctx = await phase_context(databases, spec, "cutover", 1, "m-two")
    ctx.task = replace(ctx.task, cutover=CutoverOptions(max_lag_bytes=1 << 30))
    outcome = await runner.run(ctx)
    assert isinstance(outcome, Finished) and outcome.cutover is not None
    assert outcome.cutover.rows_verified == 17 + 2 + 9  # changed, moved (old and new), deleted
    assert outcome.cutover.changes_applied == 17 + 1 + 9
    assert outcome.cutover.source_checksum == outcome.cutover.target_checksum
    order = "SELECT tenant, id, v FROM {} ORDER BY tenant, id"
    with psycopg.connect(source_url) as a, psycopg.connect(target_url) as b:
        assert (
            a.execute(order.format("orders")).fetchall()
            == b.execute(order.format("orders_copy")).fetchall()
        )


async def test_a_frozen_cutover_whose_target_lost_a_row_behind_its_back_does_not_switch(
    databases: Databases, source_url: str, target_url: str
) -> None:
    await copied(databases, "m-lost")
    with psycopg.connect(target_url, autocommit=True) as conn:  # a row no change touches
        conn.execute("DELETE FROM items_copy WHERE id = (SELECT min(id) FROM items_copy)")
    ctx = await phase_context(databases, cdc_spec(), "cutover", 1, "m-lost")
    ctx.task = replace(ctx.task, cutover=CutoverOptions(freeze=True))

    with pytest.raises(CutoverMismatch, match="differ though the source is frozen"):
        await runner.run(ctx)

    with psycopg.connect(source_url, autocommit=True) as conn:  # no switch: writable again
        conn.execute("INSERT INTO items (name, n) VALUES ('writable', 1)")
    assert slot_name("m-lost") in await slot_retained_bytes(await databases.get("legacy"))

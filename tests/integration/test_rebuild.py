"""`migrator projection rebuild` against the real broker and database: a
rebuild while the live projector runs and events flow equals the live read
model at the swap and a fresh projection afterwards; a projector batch that
waited on the swap goes on in the new tables; a lost database is rebuilt; bad
input is named and exits non-zero.

Compared: every row of every read-model table, every column but the volatile
ones: `migrations.feed_version` and the `feed_version` counter (the rebuild
renumbers rows above every version the live feed handed out, by design) and
`schema_migrations.applied_at` (when the SQL ran)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from api.app import api_database_url
from config import KafkaNames, Settings
from domain import Event
from projections.rebuild import Rebuild
from projections.store import CHANNEL
from schemas import encode
from streams.kafka.clients import producer_config
from tests.support.event_log import projecting
from tests.support.processes import ROOT, process_env
from tests.support.read_side import lifecycle, publish
from tests.support.stack import Stack, drop_database

pytestmark = pytest.mark.integration
KEYS = {
    "migrations": "migration_id",
    "migration_events": "migration_id, sequence",
    "migration_phases": "migration_id, phase",
    "projection_offsets": "projection, topic, partition",
    "schema_migrations": "version",
}
VOLATILE = {"migrations": {"feed_version"}, "schema_migrations": {"applied_at"}}
Snapshot = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


async def snapshot(conn: psycopg.AsyncConnection[Any], schema: str) -> Snapshot:
    """Every row of every read-model table in `schema`, but the volatile columns."""
    out: Snapshot = {}
    for table, order in KEYS.items():
        cur = await conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        )
        columns = [c for (c,) in await cur.fetchall() if c not in VOLATILE.get(table, set())]
        query = sql.SQL("SELECT {} FROM {}.{} ORDER BY {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(schema),
            sql.Identifier(table),
            sql.SQL(order),
        )
        out[table] = (columns, await (await conn.execute(query)).fetchall())
    return out


async def snapshot_of(settings: Settings, schema: str = "public") -> Snapshot:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await snapshot(conn, schema)


async def indexes_of(settings: Settings, schema: str) -> list[tuple[str, str]]:
    """(index name, definition without its schema) of every index in `schema`."""
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes"
            " WHERE schemaname = %s ORDER BY indexname",
            (f"{schema}.", schema),
        )
        found: list[tuple[str, str]] = await cur.fetchall()
    assert len(found) >= 8, found  # the keys and the secondary indexes of the SQL files
    return found


async def scalar(settings: Settings, query: str) -> Any:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            row = await (await conn.execute(query.encode())).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return row[0] if row else None


def histories(first: int, count: int) -> list[Event]:
    """Whole histories of `count` migrations, interleaved in groups of five."""
    out: list[Event] = []
    for start in range(first, first + count, 5):
        group = [lifecycle(f"m-{i:04d}") for i in range(start, min(start + 5, first + count))]
        out += [h[i] for i in range(max(map(len, group))) for h in group if i < len(h)]
    return out


def produce(
    settings: Settings,
    names: KafkaNames,
    events: Sequence[Event],
    per_transaction: int = 20,
    stop: threading.Event | None = None,
    pause: float = 0.0,
) -> int:
    """As the orchestrator writes: in transactions, every fifth aborted once and
    sent again. Returns how many events were committed (all, unless stopped)."""
    producer = Producer(producer_config(settings, **{"transactional.id": uuid.uuid4().hex}))
    producer.init_transactions(30)
    done = 0
    for n, at in enumerate(range(0, len(events), per_transaction)):
        if stop is not None and stop.is_set():
            break
        chunk = events[at : at + per_transaction]
        for attempt in ("abort", "commit") if n % 5 == 0 else ("commit",):
            producer.begin_transaction()
            for event in chunk:
                value, headers = encode(event)
                producer.produce(names.events, value, event.migration_id.encode(), headers=headers)
            if attempt == "abort":
                producer.flush(30)  # librdkafka#4849: an abort racing in-flight records is refused
                producer.abort_transaction(30)
            else:
                producer.commit_transaction(30)
        done += len(chunk)
        if stop is not None:
            stop.wait(pause)
    return done


async def until(settings: Settings, query: str, expected: object, task: Any = None) -> None:
    async with asyncio.timeout(120):
        while await scalar(settings, query) != expected:
            if task is not None and task.done():
                task.result()
            await asyncio.sleep(0.1)


EVENTS = "SELECT count(*) FROM migration_events"


@asynccontextmanager
async def reference(stack: Stack, settings: Settings, events: int) -> AsyncIterator[Settings]:
    """A fresh database that a fresh projector (own group) filled from offset 0."""
    name = f"t_ref_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as c:
        await c.execute(f'CREATE DATABASE "{name}"'.encode())
    ref = settings.replace(
        database={"url": SecretStr(make_conninfo(stack.database_url, dbname=name))},
        kafka={"app_id": settings.kafka.app_id + "-ref"},
    )
    try:
        async with projecting(ref) as task:
            await until(ref, EVENTS, events, task)
        yield ref
    finally:
        await asyncio.to_thread(drop_database, stack.database_url, name)


async def test_a_rebuild_while_the_projector_runs_and_events_flow_equals_the_live_model(
    stack: Stack, settings: Settings, topics: KafkaNames
) -> None:
    # given: a projected log, and a producer that goes on writing throughout
    before = histories(0, 40)
    await asyncio.to_thread(produce, settings, topics, before)
    stop = threading.Event()
    later = histories(40, 400)
    dsn = settings.database.url.get_secret_value()
    seen: dict[str, Any] = {}

    async def compare_under_lock(
        conn: psycopg.AsyncConnection[Any], live: str, shadow: str
    ) -> None:
        seen["live"], seen["shadow"] = await snapshot(conn, live), await snapshot(conn, shadow)
        feed = sql.SQL("SELECT version FROM {}.feed_version")
        live_feed = await (await conn.execute(feed.format(sql.Identifier(live)))).fetchone()
        lowest = await (await conn.execute("SELECT min(feed_version) FROM migrations")).fetchone()
        seen["feeds"] = (live_feed, lowest)
        seen["producing"] = not producing.done()

    async with (
        projecting(settings) as projector,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener,
    ):
        await until(settings, EVENTS, len(before), projector)
        await listener.execute(f"LISTEN {CHANNEL}")
        producing = asyncio.create_task(
            asyncio.to_thread(produce, settings, topics, later, 20, stop, 0.02)
        )
        await asyncio.sleep(1)

        # when
        outcome = await Rebuild(
            settings, uuid.uuid4().hex[:8], keep_old=True, swap_lag=40, on_swap=compare_under_lock
        ).run()
        await asyncio.sleep(1)
        stop.set()
        produced = len(before) + await producing
        await until(settings, EVENTS, produced, projector)
        heard = [json.loads(n.payload) async for n in listener.notifies(timeout=1)]

    # then: at the swap, under the lock, the shadow equals the live model row for row
    assert seen["producing"], "events were still being produced at the swap"
    assert seen["shadow"] == seen["live"]
    assert len(seen["live"]["migration_events"][1]) == outcome.events > len(before)
    live_feed, lowest = seen["feeds"]
    assert lowest[0] > live_feed[0]  # every live client's cursor sees each row again
    assert any("*" in note["m"] for note in heard)  # and is told to look
    # the retired tables got nothing after the swap
    retired = await snapshot_of(settings, str(outcome.retired))
    assert retired == seen["live"]
    # the indexes the replay set aside were built again: the new tables have the old ones'
    assert await indexes_of(settings, "public") == await indexes_of(settings, str(outcome.retired))
    # and the projector went on in the new tables: they equal a projection from scratch
    async with reference(stack, settings, produced) as ref:
        assert await snapshot_of(settings) == await snapshot_of(ref)
    await assert_api_role_reads_only(settings)


async def assert_api_role_reads_only(settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(
        api_database_url(settings), autocommit=True
    ) as conn:
        for table in ("migrations", "migration_events", "migration_phases", "feed_version"):
            await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        await conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("DELETE FROM migration_events")


async def test_a_projector_batch_blocked_by_the_swap_goes_on_in_the_new_tables(
    stack: Stack, settings: Settings, topics: KafkaNames
) -> None:
    # given: a live projector, up to date
    before, more = histories(0, 20), histories(20, 10)
    await publish(settings, topics, before)
    dsn = settings.database.url.get_secret_value()

    async def block_a_batch(conn: psycopg.AsyncConnection[Any], live: str, shadow: str) -> None:
        """Holding the live tables' locks: new events come, and the projector's
        next batch waits on its first statement."""
        await publish(settings, topics, more)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
            for _ in range(600):
                if await _waiting_on_offsets(watcher):
                    return
                await asyncio.sleep(0.05)
        raise AssertionError("the projector's batch never waited on the swap's locks")

    async with projecting(settings) as projector:
        await until(settings, EVENTS, len(before), projector)

        # when: the swap happens while that batch waits
        outcome = await Rebuild(
            settings, uuid.uuid4().hex[:8], keep_old=True, on_swap=block_a_batch
        ).run()
        await until(settings, EVENTS, len(before) + len(more), projector)
        assert not projector.done()

    # then: the batch went into the new tables, none of it into the retired ones,
    # and no event was applied twice (the primary keys and the offsets' CAS)
    retired = str(outcome.retired)
    assert outcome.events == len(before)
    assert await scalar(settings, f"SELECT count(*) FROM {retired}.migration_events") == len(before)
    stored = f"SELECT sum(next_offset) FROM {retired}.projection_offsets"
    assert await scalar(settings, stored) == sum(outcome.offsets.values()) == len(before)
    async with reference(stack, settings, len(before) + len(more)) as ref:
        assert await snapshot_of(settings) == await snapshot_of(ref)


async def _waiting_on_offsets(watcher: psycopg.AsyncConnection[Any]) -> bool:
    cur = await watcher.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE %s",
        ("%FROM projection_offsets%",),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


def rebuild_cli(settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "projection", "rebuild"],
        cwd=ROOT,
        env={**process_env(settings), **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_a_lost_database_is_rebuilt_by_the_command_and_the_projector_goes_on(
    stack: Stack, settings: Settings, topics: KafkaNames
) -> None:
    # given: a read model, then its database lost and created again, empty
    first = histories(0, 30)
    await asyncio.to_thread(produce, settings, topics, first)
    async with projecting(settings) as projector:
        await until(settings, EVENTS, len(first), projector)
    name = str(conninfo_to_dict(settings.database.url.get_secret_value())["dbname"])
    await asyncio.to_thread(drop_database, stack.database_url, name)  # the database is lost
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as c:
        await c.execute(f'CREATE DATABASE "{name}"'.encode())

    # when
    done = await asyncio.to_thread(rebuild_cli, settings)

    # then: everything is there again, as a projection from scratch has it
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["events"], summary["migrations"]) == (len(first), 30)
    assert "events/s" in done.stderr and "offsets" in done.stderr
    async with reference(stack, settings, len(first)) as ref:
        assert await snapshot_of(settings) == await snapshot_of(ref)
    await assert_api_role_reads_only(settings)
    # and the projector resumes from the rebuilt offsets: nothing twice, nothing lost
    more = histories(30, 10)
    await asyncio.to_thread(produce, settings, topics, more)
    async with projecting(settings) as projector:
        await until(settings, EVENTS, len(first) + len(more), projector)
    async with reference(stack, settings, len(first) + len(more)) as ref:
        assert await snapshot_of(settings) == await snapshot_of(ref)


async def test_bad_input_is_named_and_exits_non_zero(
    settings: Settings, topics: KafkaNames
) -> None:
    no_topic = await asyncio.to_thread(rebuild_cli, settings, KAFKA_TOPIC_PREFIX="nowhere.")
    no_db = await asyncio.to_thread(
        rebuild_cli, settings, DATABASE_URL="postgresql://migrator@127.0.0.1:1/migrations"
    )
    no_kafka = await asyncio.to_thread(rebuild_cli, settings, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")

    assert no_topic.returncode == 1
    assert "topic 'nowhere.migration.events' does not exist" in no_topic.stderr
    assert no_db.returncode == 1
    assert "the read model's database is unreachable" in no_db.stderr
    assert no_kafka.returncode == 1
    assert "Kafka at 127.0.0.1:1 is unreachable" in no_kafka.stderr
    schemas = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'"
    assert await scalar(settings, schemas) == 0  # a failed rebuild leaves no shadow behind

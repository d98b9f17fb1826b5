"""The projector against the real broker and database: rows and offsets commit
together, a restart resumes without loss or duplicate, a gap quarantines its
migration (more in test_quarantine.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import psycopg
import pytest

from api.publisher import Publisher
from config import KafkaNames, Settings
from domain import CommandRejected, MigrationSpec, MigrationStarted
from domain.events import Event
from projections.exceptions import OffsetConflict
from projections.projector import PROJECTION, Projector
from projections.schema import apply_schema
from projections.store import advance_offset, advance_offsets, stored_offsets
from schemas import encode

pytestmark = pytest.mark.integration
SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)
AT = "2026-01-01T00:00:00.000+00:00"


def started(mid: str) -> MigrationStarted:
    return MigrationStarted(
        event_id=f"{mid}:1",
        migration_id=mid,
        sequence=1,
        occurred_at=AT,
        causation_id=f"c-{mid}",
        spec=SPEC,
    )


def rejected(mid: str, seq: int) -> CommandRejected:
    return CommandRejected(
        event_id=f"{mid}:{seq}",
        migration_id=mid,
        sequence=seq,
        occurred_at=AT,
        causation_id=f"c-{mid}-{seq}",
        command_type="StartMigration",
        reason="no",
    )


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[Publisher]:
    pub = Publisher(settings)
    yield pub
    await pub.close()


async def publish(pub: Publisher, names: KafkaNames, events: Sequence[Event]) -> None:
    for event in events:
        value, headers = encode(event)
        await pub.publish(names.events, event.migration_id.encode(), value, headers)


async def project_until(settings: Settings, done: str, expected: int) -> None:
    """Run a projector until `done` returns `expected`, then stop it."""
    projector = Projector(settings)
    task = asyncio.create_task(projector.run())
    try:
        async with asyncio.timeout(60):
            while await scalar(settings, done) != expected:
                if task.done():
                    task.result()
                await asyncio.sleep(0.1)
    finally:
        projector.stop()
        await task


async def scalar(settings: Settings, sql: str) -> object:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        try:
            row = await (await conn.execute(sql.encode())).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return row[0] if row else None


async def test_events_become_rows_and_a_restart_adds_no_duplicate(
    settings: Settings, topics: KafkaNames, publisher: Publisher
) -> None:
    await publish(publisher, topics, [started(f"m-{i}") for i in range(20)])
    await project_until(settings, "SELECT count(*) FROM migrations", 20)

    await publish(publisher, topics, [rejected(f"m-{i}", 2) for i in range(5)])
    await project_until(settings, "SELECT count(*) FROM migration_events", 25)

    assert await scalar(settings, "SELECT count(*) FROM migrations WHERE version = 2") == 5
    stored = await scalar(
        settings, f"SELECT sum(next_offset) FROM projection_offsets WHERE projection='{PROJECTION}'"
    )
    assert stored == 25


async def test_a_duplicate_event_is_ignored(
    settings: Settings, topics: KafkaNames, publisher: Publisher
) -> None:
    await publish(publisher, topics, [started("m-1"), started("m-1"), rejected("m-1", 2)])

    await project_until(settings, "SELECT max(version) FROM migrations", 2)

    assert await scalar(settings, "SELECT count(*) FROM migration_events") == 2


async def test_a_gap_in_a_sequence_quarantines_the_migration(
    settings: Settings, topics: KafkaNames, publisher: Publisher
) -> None:
    await publish(publisher, topics, [started("m-1"), rejected("m-1", 3), started("m-2")])

    await project_until(
        settings,
        "SELECT count(*) FROM migrations WHERE quarantine_reason IS NOT NULL OR version = 1",
        2,
    )

    reason = "SELECT quarantine_reason FROM migrations WHERE migration_id = 'm-1'"
    assert await scalar(settings, reason) == "gap: expected sequence 2, got 3"
    assert await scalar(settings, "SELECT count(*) FROM migration_events WHERE sequence = 3") == 0


async def test_an_offset_moved_by_another_projector_is_refused(settings: Settings) -> None:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await apply_schema(conn)
        await advance_offset(conn, PROJECTION, "events", 0, None, 10)

        with pytest.raises(OffsetConflict):
            await advance_offset(conn, PROJECTION, "events", 0, 5, 12)
        await advance_offset(conn, PROJECTION, "events", 0, 10, 12)


async def test_a_batch_advances_every_partition_at_once_or_is_refused(settings: Settings) -> None:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await apply_schema(conn)
        await advance_offsets(conn, PROJECTION, "events", {0: (None, 10), 1: (None, 4)})
        await advance_offsets(conn, PROJECTION, "events", {0: (10, 12), 1: (4, 6)})
        assert await stored_offsets(conn, PROJECTION, "events") == {0: 12, 1: 6}

        with pytest.raises(OffsetConflict, match=r"events\[1\]: stored offset is no longer 5"):
            await advance_offsets(conn, PROJECTION, "events", {0: (12, 13), 1: (5, 7)})
        with pytest.raises(OffsetConflict, match=r"events\[0\]: an offset is stored already"):
            await advance_offsets(conn, PROJECTION, "events", {0: (None, 13)})


async def test_schema_migrations_apply_once(settings: Settings) -> None:
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        assert await apply_schema(conn) == [1, 2, 3, 4, 5, 6, 7]
        assert await apply_schema(conn) == []

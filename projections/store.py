"""Writes of the projector: events into rows, offsets by compare-and-set."""

from __future__ import annotations

from dataclasses import asdict

import psycopg
from psycopg.types.json import Jsonb

from projections.exceptions import OffsetConflict, SequenceGap
from schemas.records import to_plain_spec
from streams.domain import CommandRejected, MigrationStarted
from streams.domain.events import Event

Conn = psycopg.AsyncConnection[object]


async def stored_offsets(conn: Conn, projection: str, topic: str) -> dict[int, int]:
    cur = await conn.execute(
        "SELECT partition, next_offset FROM projection_offsets WHERE projection=%s AND topic=%s",
        (projection, topic),
    )
    rows: list[tuple[int, int]] = await cur.fetchall()  # type: ignore[assignment]
    return {int(partition): int(offset) for partition, offset in rows}


async def advance_offset(
    conn: Conn, projection: str, topic: str, partition: int, old: int | None, new: int
) -> None:
    """Move a partition's stored offset from `old` to `new`, or refuse (fencing)."""
    if old is None:
        cur = await conn.execute(
            "INSERT INTO projection_offsets VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (projection, topic, partition, new),
        )
    else:
        cur = await conn.execute(
            "UPDATE projection_offsets SET next_offset=%s"
            " WHERE projection=%s AND topic=%s AND partition=%s AND next_offset=%s",
            (new, projection, topic, partition, old),
        )
    if cur.rowcount != 1:
        raise OffsetConflict(f"{topic}[{partition}]: stored offset is no longer {old}")


async def current_version(conn: Conn, migration_id: str) -> int:
    cur = await conn.execute(
        "SELECT max(sequence) FROM migration_events WHERE migration_id=%s", (migration_id,)
    )
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0  # type: ignore[index]


async def apply_event(conn: Conn, event: Event) -> bool:
    """Apply one event; False for a duplicate (already applied). A gap raises."""
    version = await current_version(conn, event.migration_id)
    if event.sequence <= version:
        return False
    if event.sequence != version + 1:
        raise SequenceGap(f"migration {event.migration_id}: event {event.sequence} after {version}")
    await _insert_history(conn, event)
    if isinstance(event, MigrationStarted):
        await conn.execute(
            "INSERT INTO migrations (migration_id, status, version, spec, created_at, updated_at)"
            " VALUES (%s, 'RUNNING', %s, %s, %s, %s)",
            (
                event.migration_id,
                event.sequence,
                Jsonb(to_plain_spec(event.spec)),
                event.occurred_at,
                event.occurred_at,
            ),
        )
    elif isinstance(event, CommandRejected):
        await conn.execute(
            "UPDATE migrations SET version=%s, updated_at=%s WHERE migration_id=%s",
            (event.sequence, event.occurred_at, event.migration_id),
        )
    return True


async def _insert_history(conn: Conn, event: Event) -> None:
    payload = asdict(event)
    if isinstance(event, MigrationStarted):
        payload["spec"] = to_plain_spec(event.spec)
    await conn.execute(
        "INSERT INTO migration_events"
        " (migration_id, sequence, event_id, type, occurred_at, causation_id, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            event.migration_id,
            event.sequence,
            event.event_id,
            event.type,
            event.occurred_at,
            event.causation_id,
            Jsonb(payload),
        ),
    )

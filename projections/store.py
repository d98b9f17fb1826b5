"""Writes of the projector: events folded into rows, offsets by compare-and-set.

The read model's row is the domain's own fold (`evolve`) of the events, so the
projection and the orchestrator cannot disagree on what an event means.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.exceptions import OffsetConflict, SequenceGap
from schemas.records import spec_from_plain, to_plain, to_plain_spec
from streams.domain import MigrationState, Status, evolve
from streams.domain.events import Event

Conn = psycopg.AsyncConnection[Any]
STATE_COLUMNS = (
    "status",
    "phase",
    "version",
    "spec",
    "run",
    "checkpoint",
    "rows_done",
    "rows_total",
    "score",
    "reason",
)


async def stored_offsets(conn: Conn, projection: str, topic: str) -> dict[int, int]:
    cur = await conn.execute(
        "SELECT partition, next_offset FROM projection_offsets WHERE projection=%s AND topic=%s",
        (projection, topic),
    )
    rows: list[tuple[int, int]] = await cur.fetchall()
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


async def load_state(conn: Conn, migration_id: str) -> MigrationState:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {', '.join(STATE_COLUMNS)} FROM migrations WHERE migration_id = %s FOR UPDATE",
            (migration_id,),
        )
        row = await cur.fetchone()
    if row is None:
        return MigrationState(migration_id)
    spec = row.pop("spec")
    return MigrationState(
        migration_id=migration_id,
        **{**row, "status": Status(row["status"])},
        spec=spec_from_plain(spec) if spec is not None else None,
    )


async def apply_event(conn: Conn, event: Event) -> bool:
    """Apply one event; False for a duplicate (already applied). A gap raises."""
    state = await load_state(conn, event.migration_id)
    if event.sequence <= state.version:
        return False
    if event.sequence != state.version + 1:
        raise SequenceGap(
            f"migration {event.migration_id}: event {event.sequence} after {state.version}"
        )
    await _insert_history(conn, event)
    await _save_state(conn, evolve(state, event), event.occurred_at)
    return True


async def _save_state(conn: Conn, state: MigrationState, at: str) -> None:
    values = [getattr(state, c) for c in STATE_COLUMNS]
    values[STATE_COLUMNS.index("status")] = state.status.value
    values[STATE_COLUMNS.index("spec")] = Jsonb(to_plain_spec(state.spec)) if state.spec else None
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in STATE_COLUMNS)
    await conn.execute(
        f"INSERT INTO migrations (migration_id, {', '.join(STATE_COLUMNS)}, created_at, updated_at)"
        f" VALUES (%s, {', '.join(['%s'] * len(STATE_COLUMNS))}, %s, %s)"
        f" ON CONFLICT (migration_id) DO UPDATE SET {updates}, updated_at = EXCLUDED.updated_at",
        (state.migration_id, *values, at, at),
    )


async def _insert_history(conn: Conn, event: Event) -> None:
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
            Jsonb(to_plain(event)),
        ),
    )

"""Checkpoints, kept in the target database beside the rows they describe.

Each batch locks its checkpoint row (`FOR UPDATE`), writes its rows, advances
the checkpoint and logs the batch, all in one transaction. Two workers on the
same phase (a zombie and its successor) therefore take turns batch by batch:
the second reads the checkpoint the first committed. No batch is written
twice and none is skipped. The batch log (`batches`) is the proof.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from streams.dataplane.database import Conn
from streams.dataplane.sql import STAGING_SCHEMA, STATE_SCHEMA

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA};
CREATE SCHEMA IF NOT EXISTS {STAGING_SCHEMA};
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.checkpoints (
    migration_id text        NOT NULL,
    phase        text        NOT NULL,
    slice        int         NOT NULL,
    position     jsonb       NOT NULL,
    rows_done    bigint      NOT NULL DEFAULT 0,
    rows_total   bigint      NOT NULL DEFAULT 0,
    batches      bigint      NOT NULL DEFAULT 0,
    done         boolean     NOT NULL DEFAULT false,
    result       jsonb,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, phase, slice)
);
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.batches (
    migration_id text        NOT NULL,
    phase        text        NOT NULL,
    slice        int         NOT NULL,
    after_key    text,
    upto_key     text,
    rows         bigint      NOT NULL,
    worker       text        NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS batches_migration_idx ON {STATE_SCHEMA}.batches (migration_id, phase);
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.cancelled (
    migration_id text        PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now()
);
"""
SETUP_LOCK = 0x6D6967726174  # one setup at a time per database


@dataclass
class Checkpoint:
    migration_id: str
    phase: str
    slice: int
    position: dict[str, Any] = field(default_factory=dict)
    rows_done: int = 0
    rows_total: int = 0
    batches: int = 0
    done: bool = False
    result: dict[str, Any] | None = None

    def text(self) -> str:
        """The checkpoint as phase results and the read model carry it."""
        return json.dumps({"slice": self.slice, **self.position, "rows": self.rows_done})


async def prepare(conn: Conn) -> None:
    """Create the state and staging schemas (idempotent, safe in parallel)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
        await conn.execute(DDL)


_SELECT = (
    "SELECT slice, position, rows_done, rows_total, batches, done, result"
    f" FROM {STATE_SCHEMA}.checkpoints WHERE migration_id = %s AND phase = %s"
)


async def load(conn: Conn, migration_id: str, phase: str) -> list[Checkpoint]:
    """The checkpoints of one phase, by slice."""
    rows = await (await conn.execute(_SELECT + " ORDER BY slice", (migration_id, phase))).fetchall()
    return [Checkpoint(migration_id, phase, *row) for row in rows]


async def lock_slice(conn: Conn, migration_id: str, phase: str, slice_: int) -> Checkpoint | None:
    """One slice's checkpoint, locked until the transaction ends (None: none yet)."""
    query = _SELECT + " AND slice = %s FOR UPDATE"
    row = await (await conn.execute(query, (migration_id, phase, slice_))).fetchone()
    return None if row is None else Checkpoint(migration_id, phase, *row)


async def create(conn: Conn, cp: Checkpoint) -> None:
    await conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.checkpoints (migration_id, phase, slice, position, rows_total)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (cp.migration_id, cp.phase, cp.slice, json.dumps(cp.position), cp.rows_total),
    )


async def advance(conn: Conn, cp: Checkpoint, rows: int, worker: str, **position: Any) -> None:
    """Move a locked checkpoint on by one committed batch, and log the batch."""
    await conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.batches"
        " (migration_id, phase, slice, after_key, upto_key, rows, worker)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            cp.migration_id,
            cp.phase,
            cp.slice,
            cp.position.get("after"),
            position.get("after"),
            rows,
            worker,
        ),
    )
    cp.position = {**cp.position, **position}
    cp.rows_done += rows
    cp.batches += 1
    await conn.execute(
        f"UPDATE {STATE_SCHEMA}.checkpoints SET position = %s, rows_done = %s, batches = %s,"
        " updated_at = now() WHERE migration_id = %s AND phase = %s AND slice = %s",
        (json.dumps(cp.position), cp.rows_done, cp.batches, cp.migration_id, cp.phase, cp.slice),
    )


async def finish(conn: Conn, cp: Checkpoint, result: dict[str, Any]) -> None:
    cp.done, cp.result = True, result
    await conn.execute(
        f"UPDATE {STATE_SCHEMA}.checkpoints SET done = true, result = %s, updated_at = now()"
        " WHERE migration_id = %s AND phase = %s AND slice = %s",
        (json.dumps(result), cp.migration_id, cp.phase, cp.slice),
    )


async def restart(conn: Conn, cp: Checkpoint, position: dict[str, Any], rows_total: int) -> None:
    """Start a locked checkpoint's slice over from `position`: nothing done,
    and its batch log gone with the rows it described."""
    await conn.execute(
        f"DELETE FROM {STATE_SCHEMA}.batches WHERE migration_id = %s AND phase = %s AND slice = %s",
        (cp.migration_id, cp.phase, cp.slice),
    )
    cp.position, cp.rows_done, cp.rows_total, cp.batches = position, 0, rows_total, 0
    await conn.execute(
        f"UPDATE {STATE_SCHEMA}.checkpoints SET position = %s, rows_done = 0, rows_total = %s,"
        " batches = 0, done = false, result = NULL, updated_at = now()"
        " WHERE migration_id = %s AND phase = %s AND slice = %s",
        (json.dumps(position), rows_total, cp.migration_id, cp.phase, cp.slice),
    )


async def forget(conn: Conn, migration_id: str, phase: str) -> None:
    await conn.execute(
        f"DELETE FROM {STATE_SCHEMA}.checkpoints WHERE migration_id = %s AND phase = %s",
        (migration_id, phase),
    )


async def is_cancelled(conn: Conn, migration_id: str) -> bool:
    query = f"SELECT 1 FROM {STATE_SCHEMA}.cancelled WHERE migration_id = %s"
    return await (await conn.execute(query, (migration_id,))).fetchone() is not None


async def mark_cancelled(conn: Conn, migration_id: str) -> None:
    await conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.cancelled (migration_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (migration_id,),
    )

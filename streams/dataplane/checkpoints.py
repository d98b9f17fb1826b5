"""Checkpoints, kept in the target database beside the rows they describe.

Each batch locks its checkpoint row (`FOR UPDATE`), writes its rows, advances
the checkpoint and logs the batch, all in one transaction. Two workers on the
same phase (a zombie and its successor) therefore take turns batch by batch:
the second reads the checkpoint the first committed. No batch is written
twice and none is skipped. The batch log (`batches`) is the proof.

A chunked phase (extract) has one checkpoint per chunk: a run claims an
unfinished one (`FOR UPDATE SKIP LOCKED`, so runs in several processes share
the chunks), logs the attempt in `chunk_runs` (committed at once, so a chunk
redone after a crash shows as a second attempt), copies it and marks it done
with its batch log row, all in the chunk's transaction.
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
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.chunk_runs (
    migration_id text        NOT NULL,
    phase        text        NOT NULL,
    slice        int         NOT NULL,
    worker       text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS chunk_runs_migration_idx
    ON {STATE_SCHEMA}.chunk_runs (migration_id, phase);
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


async def claim(conn: Conn, migration_id: str, phase: str) -> Checkpoint | None:
    """An unfinished slice no other transaction holds, locked (None: none)."""
    query = _SELECT + " AND NOT done ORDER BY slice LIMIT 1 FOR UPDATE SKIP LOCKED"
    row = await (await conn.execute(query, (migration_id, phase))).fetchone()
    return None if row is None else Checkpoint(migration_id, phase, *row)


async def log_attempt(conn: Conn, cp: Checkpoint, worker: str) -> None:
    await conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.chunk_runs (migration_id, phase, slice, worker)"
        " VALUES (%s, %s, %s, %s)",
        (cp.migration_id, cp.phase, cp.slice, worker),
    )


async def chunk_done(
    conn: Conn,
    cp: Checkpoint,
    worker: str,
    bounds: tuple[str | None, str | None],
    result: dict[str, Any],
) -> None:
    """Mark a locked chunk's checkpoint done with `result` (its rows, bytes
    and checksum), and log it as one batch."""
    rows = int(result["rows"])
    await conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.batches"
        " (migration_id, phase, slice, after_key, upto_key, rows, worker)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (cp.migration_id, cp.phase, cp.slice, *bounds, rows, worker),
    )
    cp.position = {**cp.position, "bytes": int(result.get("bytes", 0))}
    cp.rows_done, cp.batches, cp.done, cp.result = rows, cp.batches + 1, True, result
    await conn.execute(
        f"UPDATE {STATE_SCHEMA}.checkpoints SET position = %s, rows_done = %s, batches = %s,"
        " done = true, result = %s, updated_at = now()"
        " WHERE migration_id = %s AND phase = %s AND slice = %s",
        (
            json.dumps(cp.position),
            rows,
            cp.batches,
            json.dumps(result),
            cp.migration_id,
            cp.phase,
            cp.slice,
        ),
    )


async def drop_phase(conn: Conn, migration_id: str, phase: str) -> None:
    """Forget a phase's checkpoints and its batch log (the rows they described
    are gone); its attempts stay logged."""
    await conn.execute(
        f"DELETE FROM {STATE_SCHEMA}.batches WHERE migration_id = %s AND phase = %s",
        (migration_id, phase),
    )
    await forget(conn, migration_id, phase)


async def finish(conn: Conn, cp: Checkpoint, result: dict[str, Any]) -> None:
    cp.done, cp.result = True, result
    await conn.execute(
        f"UPDATE {STATE_SCHEMA}.checkpoints SET done = true, result = %s, updated_at = now()"
        " WHERE migration_id = %s AND phase = %s AND slice = %s",
        (json.dumps(result), cp.migration_id, cp.phase, cp.slice),
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

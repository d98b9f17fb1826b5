"""Where change capture stands, kept in the target database beside the rows:
one row per migration in `migrator_state.cdc_positions` (the LSN applied up
to, how many changes and transactions, the captured table's shape, whether a
TRUNCATE came) and the keys every applied change touched
(`migrator_state.cdc_keys`, which the cutover checks row by row).

The position is written in the same transaction as the rows it covers
(apply.py), so the target holds a change and its position together or
neither: after a crash, capture resumes from the stored LSN and skips the
transactions that end at or before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streams.dataplane.cdc.drift import Shape
from streams.dataplane.checkpoints import SETUP_LOCK
from streams.dataplane.database import Conn
from streams.dataplane.sql import STATE_SCHEMA

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA};
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.cdc_positions (
    migration_id text        PRIMARY KEY,
    slot         text        NOT NULL,
    lsn          pg_lsn      NOT NULL,
    start_lsn    pg_lsn      NOT NULL,
    changes      bigint      NOT NULL DEFAULT 0,
    transactions bigint      NOT NULL DEFAULT 0,
    shape        jsonb       NOT NULL,
    truncated    boolean     NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE {STATE_SCHEMA}.cdc_positions ADD COLUMN IF NOT EXISTS cutover jsonb;
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.cdc_keys (
    migration_id text NOT NULL,
    key          text NOT NULL,
    PRIMARY KEY (migration_id, key)
);
"""
TABLE = f"{STATE_SCHEMA}.cdc_positions"


@dataclass(frozen=True)
class Position:
    """A migration's capture: its slot, the LSN applied up to (and where it
    started: the snapshot's), the changes and transactions applied, the
    captured table's shape, and whether a TRUNCATE was applied."""

    migration_id: str
    slot: str
    lsn: str
    start_lsn: str
    changes: int
    transactions: int
    shape: Shape
    truncated: bool

    def text(self) -> str:
        """As a phase's checkpoint text."""
        return json.dumps({"position": self.lsn, "changes": self.changes})


async def prepare(conn: Conn) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
        await conn.execute(DDL)


async def start(conn: Conn, migration_id: str, slot: str, lsn: str, shape: Shape) -> None:
    """Capture of `migration_id` begins at `lsn`, the snapshot the copy reads
    (a copy started over begins anew: nothing counted, no key touched)."""
    await conn.execute(
        f"INSERT INTO {TABLE} (migration_id, slot, lsn, start_lsn, shape)"
        " VALUES (%(m)s, %(slot)s, %(lsn)s, %(lsn)s, %(shape)s)"
        " ON CONFLICT (migration_id) DO UPDATE SET slot = excluded.slot, lsn = excluded.lsn,"
        " start_lsn = excluded.start_lsn, shape = excluded.shape, changes = 0,"
        " transactions = 0, truncated = false, cutover = NULL, updated_at = now()",
        {"m": migration_id, "slot": slot, "lsn": lsn, "shape": json.dumps(shape.as_json())},
    )
    await conn.execute(
        f"DELETE FROM {STATE_SCHEMA}.cdc_keys WHERE migration_id = %s", (migration_id,)
    )


async def load(conn: Conn, migration_id: str, table: str, lock: bool = False) -> Position | None:
    """The stored position (locked to the end of the transaction with `lock`)."""
    row = await (
        await conn.execute(
            f"SELECT slot, lsn::text, start_lsn::text, changes, transactions, shape, truncated"
            f" FROM {TABLE} WHERE migration_id = %s{' FOR UPDATE' if lock else ''}",
            (migration_id,),
        )
    ).fetchone()
    if row is None:
        return None
    slot, lsn, start_lsn, changes, transactions, shape, truncated = row
    found: dict[str, Any] = shape
    return Position(
        migration_id, slot, lsn, start_lsn, changes, transactions, Shape.of(table, found), truncated
    )


async def save(conn: Conn, migration_id: str, lsn: str, changes: int, transactions: int) -> None:
    """Applied up to `lsn`, `changes` more in `transactions` more transactions."""
    await conn.execute(
        f"UPDATE {TABLE} SET lsn = greatest(lsn, %s::pg_lsn), changes = changes + %s,"
        " transactions = transactions + %s, updated_at = now() WHERE migration_id = %s",
        (lsn, changes, transactions, migration_id),
    )


async def switched(conn: Conn, migration_id: str, result: dict[str, Any]) -> None:
    """The cutover's result, kept: a repeated cutover task answers with it."""
    await conn.execute(
        f"UPDATE {TABLE} SET cutover = %s WHERE migration_id = %s",
        (json.dumps(result), migration_id),
    )


async def cutover_of(conn: Conn, migration_id: str) -> dict[str, Any] | None:
    """The result of the migration's completed cutover (None: none yet)."""
    found = await conn.execute(
        f"SELECT cutover FROM {TABLE} WHERE migration_id = %s", (migration_id,)
    )
    row = await found.fetchone()
    return None if row is None or row[0] is None else dict(row[0])


async def truncated(conn: Conn, migration_id: str) -> None:
    await conn.execute(
        f"UPDATE {TABLE} SET truncated = true WHERE migration_id = %s", (migration_id,)
    )


async def touched(conn: Conn, migration_id: str, keys: set[str]) -> None:
    """Remember `keys` (JSON arrays of the key's values) as changed."""
    if keys:
        await conn.execute(
            f"INSERT INTO {STATE_SCHEMA}.cdc_keys (migration_id, key)"
            " SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
            (migration_id, sorted(keys)),
        )


async def keys(conn: Conn, migration_id: str) -> list[list[str | None]]:
    """Every key changed since the snapshot, as lists of the key's values."""
    rows = await (
        await conn.execute(
            f"SELECT key FROM {STATE_SCHEMA}.cdc_keys WHERE migration_id = %s ORDER BY key",
            (migration_id,),
        )
    ).fetchall()
    return [json.loads(r[0]) for r in rows]

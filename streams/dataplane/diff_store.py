"""A migration's latest row-level diff, kept in the target database beside
its checkpoints: the report (`diffs`, one row per migration) and every
differing key (`diff_keys`), which a repair re-copies.

The event that carries a diff (DiffRecorded) holds its counts and a bounded
sample of keys, so that the log and the read model stay small whatever
differs; the full key lists, as large as the difference, stay here. Saving
a diff replaces the migration's previous one and forgets its repair
checkpoint (streams.dataplane.repair), in one transaction: a repair always
works on the latest diff's keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streams.dataplane import checkpoints
from streams.dataplane.bisection import Found, Key
from streams.dataplane.database import Conn
from streams.dataplane.sql import STATE_SCHEMA

REPAIR = "repair"
KINDS = ("missing", "extra", "different")
DDL = f"""
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.diffs (
    migration_id text        PRIMARY KEY,
    diff_id      text        NOT NULL,
    phase        text        NOT NULL,
    taken_at     timestamptz NOT NULL DEFAULT now(),
    report       jsonb       NOT NULL
);
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.diff_keys (
    migration_id text  NOT NULL,
    kind         text  NOT NULL,
    key          jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS diff_keys_migration_idx ON {STATE_SCHEMA}.diff_keys (migration_id);
"""
SETUP_LOCK = 0x6D6967726466  # one setup at a time per database


async def prepare(conn: Conn) -> None:
    """Create the tables (idempotent, safe in parallel)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
        await conn.execute(DDL)


async def save(
    conn: Conn, migration_id: str, diff_id: str, phase: str, report: dict[str, Any], found: Found
) -> None:
    """Replace the migration's diff with this one, in `conn`'s transaction."""
    await conn.execute(
        f"DELETE FROM {STATE_SCHEMA}.diff_keys WHERE migration_id = %s", (migration_id,)
    )
    async with conn.cursor().copy(
        f"COPY {STATE_SCHEMA}.diff_keys (migration_id, kind, key) FROM STDIN"
    ) as copy:
        for kind, keys in zip(KINDS, (found.missing, found.extra, found.different), strict=True):
            for key in keys:
                await copy.write_row((migration_id, kind, json.dumps(list(key))))
    await conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.diffs (migration_id, diff_id, phase, report)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (migration_id) DO UPDATE SET"
        " diff_id = EXCLUDED.diff_id, phase = EXCLUDED.phase, taken_at = now(),"
        " report = EXCLUDED.report",
        (migration_id, diff_id, phase, json.dumps(report)),
    )
    await checkpoints.forget(conn, migration_id, REPAIR)


@dataclass(frozen=True)
class Keys:
    """The latest diff's id and its differing keys, by kind."""

    diff_id: str
    missing: list[Key]
    extra: list[Key]
    different: list[Key]


async def latest(conn: Conn, migration_id: str) -> Keys | None:
    """The migration's latest diff (None: none), its row locked."""
    row = await (
        await conn.execute(
            f"SELECT diff_id FROM {STATE_SCHEMA}.diffs WHERE migration_id = %s FOR UPDATE",
            (migration_id,),
        )
    ).fetchone()
    if row is None:
        return None
    found = await (
        await conn.execute(
            f"SELECT kind, key FROM {STATE_SCHEMA}.diff_keys WHERE migration_id = %s",
            (migration_id,),
        )
    ).fetchall()
    by_kind: dict[str, list[Key]] = {kind: [] for kind in KINDS}
    for kind, key in found:
        by_kind[str(kind)].append(tuple(str(v) for v in key))
    return Keys(str(row[0]), *(sorted(by_kind[k]) for k in KINDS))

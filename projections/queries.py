"""Reads of the read model, for the API. Every query is parameterised."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

MIGRATION_COLUMNS = (
    "migration_id, status, phase, version, spec, run, checkpoint, rows_done, rows_total,"
    " score, reason, created_at, updated_at"
)


async def get_migration(pool: AsyncConnectionPool, migration_id: str) -> dict[str, Any] | None:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {MIGRATION_COLUMNS} FROM migrations"
            " WHERE migration_id = %s AND spec IS NOT NULL",
            (migration_id,),
        )
        return await cur.fetchone()


async def list_events(pool: AsyncConnectionPool, migration_id: str) -> list[dict[str, Any]]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT sequence, event_id, type, occurred_at, causation_id, payload"
            " FROM migration_events WHERE migration_id = %s ORDER BY sequence",
            (migration_id,),
        )
        return await cur.fetchall()

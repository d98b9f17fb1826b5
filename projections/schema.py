"""Versioned SQL migrations of the read model, applied once each, in order."""

from __future__ import annotations

from importlib import resources

import psycopg

LOCK_ID = 7_214_001  # pg_advisory_xact_lock key: one migrator at a time


def sql_files() -> list[tuple[int, str]]:
    """(version, sql) for every file in projections/sql, by version."""
    files = resources.files("projections").joinpath("sql").iterdir()
    found = [
        (int(f.name.split("_", 1)[0]), f.read_text()) for f in files if f.name.endswith(".sql")
    ]
    return sorted(found)


async def apply_schema(conn: psycopg.AsyncConnection[object]) -> list[int]:
    """Apply the SQL files not yet applied; return the versions applied now."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}  # type: ignore[index]
        for version, sql in sql_files():
            if version not in done:
                await conn.execute(sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                )
                applied.append(version)
    return applied

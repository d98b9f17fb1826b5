"""Reads of the read model, for the API. Every query is parameterised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

Row = dict[str, Any]
MIGRATION_COLUMNS = (
    "m.migration_id, m.status, m.phase, m.version, m.spec, m.run, m.checkpoint, m.rows_done,"
    " m.rows_total, m.score, m.reason, m.created_at, m.updated_at, m.started_at,"
    " m.finished_at, m.feed_version, m.escaped_sequences"
)
# A live migration's (domain.live): its lag, the source position applied last,
# the cutover asked for and what it ended with.
LIVE = "m.lag_bytes, m.lag_seconds, m.source_position AS position, m.cutover, m.cutover_result"
QUARANTINE = (
    "CASE WHEN m.quarantine_reason IS NULL THEN NULL ELSE json_build_object("
    "'reason', m.quarantine_reason, 'at_sequence', m.quarantine_sequence,"
    " 'since', m.quarantined_at) END AS quarantine"
)
# A row without a spec has only rejections, unless its first event was quarantined.
EXISTS = "(m.spec IS NOT NULL OR m.quarantine_reason IS NOT NULL)"
# Each phase, and over them all: the bytes (summed) and the snapshot the
# source was last read in (of the phase that named one last).
PHASES = (
    "LEFT JOIN LATERAL (SELECT COALESCE(json_agg(json_build_object("
    "'phase', p.phase, 'status', p.status, 'run', p.run, 'rows_done', p.rows_done,"
    " 'rows_total', p.rows_total, 'bytes_done', p.bytes_done, 'checkpoint', p.checkpoint,"
    " 'score', p.score, 'reason', p.reason, 'started_at', p.started_at,"
    " 'finished_at', p.finished_at, 'updated_at', p.updated_at, 'snapshot', p.snapshot,"
    " 'run_started_at', p.run_started_at, 'rows_per_second', p.rows_per_second,"
    " 'bytes_per_second', p.bytes_per_second, 'eta_seconds', p.eta_seconds,"
    " 'eta_at', p.eta_at) ORDER BY p.started_at, p.phase), '[]') AS phases,"
    " COALESCE(sum(p.bytes_done), 0)::bigint AS bytes_done,"
    " (array_agg(p.snapshot ORDER BY p.updated_at DESC) FILTER"
    " (WHERE p.snapshot IS NOT NULL))[1] AS snapshot"
    " FROM migration_phases p WHERE p.migration_id = m.migration_id) ph ON true"
)
# A migration's pace is its current phase's: later phases are not guessed at,
# so its ETA is when the current phase should end.
PACE = "cur.rows_per_second, cur.bytes_per_second, cur.eta_seconds, cur.eta_at"
CURRENT = (
    "LEFT JOIN migration_phases cur ON cur.migration_id = m.migration_id AND cur.phase = m.phase"
)
SELECT_MIGRATIONS = (
    f"SELECT {MIGRATION_COLUMNS}, ph.bytes_done, ph.snapshot, {PACE}, {QUARANTINE}, ph.phases,"
    f" {LIVE}"
    f" FROM migrations m {PHASES} {CURRENT}"
)
EVENT_COLUMNS = "sequence, event_id, type, occurred_at, causation_id, payload"


async def _all(pool: AsyncConnectionPool, sql: str, params: Sequence[object]) -> list[Row]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchall()


async def get_migration(pool: AsyncConnectionPool, migration_id: str) -> Row | None:
    """A migration that exists (see EXISTS)."""
    rows = await _all(
        pool, f"{SELECT_MIGRATIONS} WHERE m.migration_id = %s AND {EXISTS}", [migration_id]
    )
    return rows[0] if rows else None


async def list_migrations(
    pool: AsyncConnectionPool,
    statuses: Sequence[str],
    limit: int,
    after: tuple[str, str] | None,
    quarantined: bool | None = None,
) -> tuple[int, list[Row]]:
    """(feed version, up to `limit` rows) newest first, after the key
    (created_at, migration_id) of the last row of the previous page; only the
    quarantined ones (True), only the others (False), or all (None)."""
    where = [EXISTS]
    params: list[object] = []
    if statuses:
        where.append("m.status = ANY(%s)")
        params.append(list(statuses))
    if quarantined is not None:
        where.append(f"m.quarantine_reason IS {'NOT ' if quarantined else ''}NULL")
    if after is not None:
        where.append("(m.created_at, m.migration_id) < (%s::timestamptz, %s)")
        params.extend(after)
    sql = (
        f"{SELECT_MIGRATIONS} WHERE {' AND '.join(where)}"
        " ORDER BY m.created_at DESC, m.migration_id DESC LIMIT %s"
    )
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        feed = await _feed(conn)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.encode(), [*params, limit])
            return feed, await cur.fetchall()


async def _feed(conn: Any) -> int:
    cur = await conn.execute("SELECT version FROM feed_version WHERE id = 1")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def feed_version(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        return await _feed(conn)


async def changes_since(pool: AsyncConnectionPool, version: int, limit: int) -> list[Row]:
    """Migrations written after feed version `version`, in the order written."""
    return await _all(
        pool,
        f"{SELECT_MIGRATIONS} WHERE m.feed_version > %s AND {EXISTS}"
        " ORDER BY m.feed_version LIMIT %s",
        [version, limit],
    )


async def list_events(
    pool: AsyncConnectionPool, migration_id: str, after: int = 0, limit: int = 10_000
) -> list[Row]:
    return await _all(
        pool,
        f"SELECT {EVENT_COLUMNS} FROM migration_events"
        " WHERE migration_id = %s AND sequence > %s ORDER BY sequence LIMIT %s",
        [migration_id, after, limit],
    )


async def command_effect(
    pool: AsyncConnectionPool, migration_id: str, command_id: str
) -> list[Row]:
    """The events a command caused (its rejection, or what it did), once projected."""
    return await _all(
        pool,
        f"SELECT {EVENT_COLUMNS} FROM migration_events"
        " WHERE migration_id = %s AND causation_id = %s ORDER BY sequence",
        [migration_id, command_id],
    )


async def command_effects(
    pool: AsyncConnectionPool, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[Row]]:
    """`command_effect` of many (migration_id, command_id) at once: those
    whose events are projected, each with its events in order."""
    rows = await _all(
        pool,
        f"SELECT migration_id, {EVENT_COLUMNS} FROM migration_events"
        " JOIN unnest(%s::text[], %s::text[]) AS k(migration_id, causation_id)"
        " USING (migration_id, causation_id) ORDER BY migration_id, sequence",
        [[m for m, _ in keys], [c for _, c in keys]],
    )
    found: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        key = (row.pop("migration_id"), row["causation_id"])
        found.setdefault(key, []).append(row)
    return found


async def get_migrations(pool: AsyncConnectionPool, ids: Sequence[str]) -> dict[str, Row]:
    """`get_migration` of many at once: those that exist, by id."""
    rows = await _all(
        pool, f"{SELECT_MIGRATIONS} WHERE m.migration_id = ANY(%s) AND {EXISTS}", [list(ids)]
    )
    return {row["migration_id"]: row for row in rows}


async def ids_in_status(pool: AsyncConnectionPool, statuses: Sequence[str]) -> list[str]:
    rows = await _all(
        pool,
        "SELECT migration_id FROM migrations WHERE status = ANY(%s) AND spec IS NOT NULL"
        " ORDER BY migration_id",
        [list(statuses)],
    )
    return [r["migration_id"] for r in rows]


async def ping(pool: AsyncConnectionPool) -> None:
    """Raise unless the read model answers (reachable, schema applied, readable)."""
    await _all(pool, "SELECT version FROM feed_version WHERE id = 1", [])


async def live_statuses(pool: AsyncConnectionPool) -> dict[str, str]:
    """The status of every migration with `cdc` (domain.live), by id."""
    rows = await _all(
        pool, "SELECT migration_id, status FROM migrations WHERE spec->>'cdc' = 'true'", []
    )
    return {r["migration_id"]: r["status"] for r in rows}


async def latest_diff(pool: AsyncConnectionPool, migration_id: str) -> Row | None:
    """The migration's latest row-level diff (its DiffRecorded event), if any."""
    rows = await _all(
        pool,
        f"SELECT {EVENT_COLUMNS} FROM migration_events"
        " WHERE migration_id = %s AND type = 'DiffRecorded' ORDER BY sequence DESC LIMIT 1",
        [migration_id],
    )
    return rows[0] if rows else None

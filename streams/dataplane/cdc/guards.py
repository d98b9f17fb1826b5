"""What a source must offer before a migration with `cdc` copies anything:
`wal_level = logical`, a role with REPLICATION (or a superuser), a replica
identity on the table that carries the spec's key (its primary key by
default, an index, or FULL), and the output plugin. Each missing one raises
CaptureRefused, saying what to change; none is retried.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from domain.spec import parse_source_key
from streams.dataplane.catalog import primary_key_columns, relation
from streams.dataplane.cdc.drift import Shape
from streams.dataplane.cdc.slots import PLUGIN, PREFIX
from streams.dataplane.database import Conn
from streams.dataplane.errors import CaptureRefused

IDENTITY_INDEX = """
SELECT array_agg(a.attname::text ORDER BY k.n)
FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, n), pg_attribute a
WHERE i.indrelid = %s AND i.indisreplident AND a.attrelid = i.indrelid AND a.attnum = k.attnum
"""
SHAPE = """
SELECT attname, format_type(atttypid, atttypmod), attstorage <> 'p'
FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""


async def check_source(conn: Conn, table: str, source_key: str, plugin: str = PLUGIN) -> None:
    """CaptureRefused unless changes of `table` can be captured (cheapest first)."""
    await check_wal_level(conn)
    await check_privilege(conn)
    await check_identity(conn, table, parse_source_key(source_key))
    await check_plugin(conn, plugin)


def wal_level_problem(level: str) -> str | None:
    """Why a source running with `level` cannot be captured (None: it can)."""
    if level == "logical":
        return None
    return (
        f"the source runs with wal_level = {level}; change capture needs wal_level = logical"
        " (set it in postgresql.conf and restart the source)"
    )


async def check_wal_level(conn: Conn) -> None:
    found = await (await conn.execute("SHOW wal_level")).fetchone()
    problem = wal_level_problem(str(found[0]) if found else "?")
    if problem is not None:
        raise CaptureRefused(problem)


async def check_privilege(conn: Conn) -> None:
    found = await (
        await conn.execute(
            "SELECT current_user, rolreplication OR rolsuper FROM pg_roles"
            " WHERE rolname = current_user"
        )
    ).fetchone()
    if found is None or not found[1]:
        who = found[0] if found else "the source's user"
        raise CaptureRefused(
            f"role {who} may not create replication slots on the source:"
            f" ALTER ROLE {who} REPLICATION (or connect as a role that has it)"
        )


async def check_identity(conn: Conn, table: str, key: Sequence[str]) -> None:
    """The table's replica identity must carry every column of `key`."""
    oid = await relation(conn, table)
    found = await (
        await conn.execute("SELECT relreplident FROM pg_class WHERE oid = %s", (oid,))
    ).fetchone()
    mode = str(found[0]) if found else "n"
    if mode == "f":
        return
    if mode == "d":
        columns = await primary_key_columns(conn, table)
        what = "its primary key" if columns else "no primary key (REPLICA IDENTITY DEFAULT)"
    elif mode == "i":
        row = await (await conn.execute(IDENTITY_INDEX, (oid,))).fetchone()
        columns = list(row[0]) if row and row[0] else []
        what = "its replica identity index"
    else:
        columns, what = [], "REPLICA IDENTITY NOTHING"
    missing = [k for k in key if k not in columns]
    if missing:
        raise CaptureRefused(
            f"table {table} has {what}, which does not carry the key column {missing[0]}:"
            " its updates and deletes could not be matched in the target (add a primary key"
            f" on the key, or ALTER TABLE {table} REPLICA IDENTITY FULL)"
        )


async def check_plugin(conn: Conn, plugin: str) -> None:
    """A temporary slot of `plugin`, created and dropped: the plugin loads."""
    probe = f"{PREFIX}probe_{await _backend(conn)}"
    try:
        await conn.execute(
            "SELECT pg_create_logical_replication_slot(%s, %s, true)", (probe, plugin)
        )
    except psycopg.errors.UndefinedFile:
        raise CaptureRefused(
            f"the output plugin {plugin} is not installed on the source"
            " (Debian: apt-get install postgresql-<version>-wal2json)"
        ) from None
    await conn.execute("SELECT pg_drop_replication_slot(%s)", (probe,))


async def _backend(conn: Conn) -> int:
    found = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    return int(found[0]) if found else 0


async def shape_of(conn: Conn, table: str) -> Shape:
    """`table`'s columns and types as capture checks changes against."""
    rows = await (await conn.execute(SHAPE, (await relation(conn, table),))).fetchall()
    return Shape(
        table,
        tuple((str(n), str(t)) for n, t, _ in rows),
        frozenset(str(n) for n, _, out_of_line in rows if out_of_line),
    )

"""What the phases read from a database's catalog: columns, keys, counts."""

from __future__ import annotations

from psycopg import sql

from streams.dataplane.database import Conn
from streams.dataplane.errors import SpecError
from streams.dataplane.sql import table


async def column_defs(conn: Conn, name: str) -> list[tuple[str, str]]:
    """(column, type) of table `name` in order; SpecError when it is missing."""
    found = await (await conn.execute("SELECT to_regclass(%s)::oid", (_regname(name),))).fetchone()
    if found is None or found[0] is None:
        raise SpecError(f"table {name} does not exist in database {conn.info.dbname}")
    rows = await (
        await conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (found[0],),
        )
    ).fetchall()
    return [(str(n), str(t)) for n, t in rows]


async def primary_key(conn: Conn, name: str) -> str:
    row = await (
        await conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
            (_regname(name),),
        )
    ).fetchone()
    if row is None:
        raise SpecError(f"table {name} has no primary key")
    return str(row[0])


async def count(conn: Conn, name: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(table(name))
    row = await (await conn.execute(query)).fetchone()
    return int(row[0]) if row else 0


def _regname(name: str) -> str:
    """`schema.table` as to_regclass reads it, each part quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split(".", 1))


async def batch_bounds(conn: Conn, query: sql.Composed) -> tuple[str | None, int]:
    """The last key and the row count of a `next_batch` query."""
    row = await (await conn.execute(query)).fetchone()
    return (row[0], int(row[1])) if row else (None, 0)

"""What the phases read from a database's catalog: columns, keys, counts."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from streams.dataplane.database import Conn
from streams.dataplane.errors import SpecError
from streams.dataplane.sql import columns, key_text, table


async def relation(conn: Conn, name: str) -> int:
    """The OID of table `name`; SpecError when it is missing."""
    found = await (await conn.execute("SELECT to_regclass(%s)::oid", (regname(name),))).fetchone()
    if found is None or found[0] is None:
        raise SpecError(f"table {name} does not exist in database {conn.info.dbname}")
    return int(found[0])


async def column_defs(conn: Conn, name: str) -> list[tuple[str, str]]:
    """(column, type) of table `name` in order; SpecError when it is missing."""
    rows = await (
        await conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (await relation(conn, name),),
        )
    ).fetchall()
    return [(str(n), str(t)) for n, t in rows]


async def primary_key(conn: Conn, name: str) -> str:
    row = await (
        await conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
            (regname(name),),
        )
    ).fetchone()
    if row is None:
        raise SpecError(f"table {name} has no primary key")
    return str(row[0])


async def primary_key_columns(conn: Conn, name: str) -> list[str]:
    """The columns of table `name`'s primary key, in key order (none without one)."""
    rows = await (
        await conn.execute(
            "SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attnum = k.attnum"
            " WHERE a.attrelid = i.indrelid AND i.indrelid = to_regclass(%s) AND i.indisprimary"
            " ORDER BY k.n",
            (regname(name),),
        )
    ).fetchall()
    return [str(r[0]) for r in rows]


async def count_keys(conn: Conn, name: str, key: Sequence[str]) -> tuple[int, int, list[int]]:
    """Of table `name`, in one scan: its rows, the rows with a NULL in any
    column of `key`, and the rows whose each key column is NULL."""
    nulls = [sql.SQL("count(*) - count({})").format(sql.Identifier(k)) for k in key]
    anywhere = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(k)) for k in key)
    query = sql.SQL("SELECT count(*), count(*) FILTER (WHERE {}), {} FROM {}").format(
        anywhere, sql.SQL(", ").join(nulls), table(name)
    )
    row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), [int(n) for n in row[2:]]


async def has_unique_index(conn: Conn, name: str, key: Sequence[str]) -> bool:
    """Whether a valid unique index (or the primary key) of table `name` holds
    its rows' `key` unique: one on those columns, or on some of them (then
    every combination of all of them is unique too)."""
    row = await (
        await conn.execute(
            "SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(%s)"
            " AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL"
            " AND (SELECT bool_and(a.attname = ANY(%s))"
            "      FROM unnest(i.indkey[0:i.indnkeyatts - 1]) AS k(attnum)"
            "      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)"
            " LIMIT 1",
            (regname(name), list(key)),
        )
    ).fetchone()
    return row is not None


async def repeated_keys(
    conn: Conn, name: str, key: Sequence[str], sample: int = 5
) -> tuple[int, list[str]]:
    """How many values of `key` (combinations, for a composite key) occur more
    than once in table `name`, and a few of them, in key order."""
    query = sql.SQL(
        "SELECT count(*) OVER (), {text} FROM"
        " (SELECT {cols} FROM {t} WHERE {set} GROUP BY {cols} HAVING count(*) > 1) AS d"
        " ORDER BY {order} LIMIT {n}"
    ).format(
        text=key_text(key, "d"),
        cols=columns(key),
        t=table(name),
        set=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(k)) for k in key),
        order=columns(key, "d"),
        n=sample,
    )
    rows = await (await conn.execute(query)).fetchall()
    return (int(rows[0][0]) if rows else 0), [str(r[1]) for r in rows]


async def count(conn: Conn, name: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(table(name))
    row = await (await conn.execute(query)).fetchone()
    return int(row[0]) if row else 0


async def size(conn: Conn, name: str) -> int:
    """The bytes of table `name`'s rows (its heap, without indexes)."""
    query = "SELECT pg_relation_size(%s::regclass)"
    row = await (await conn.execute(query, (regname(name),))).fetchone()
    return int(row[0]) if row else 0


async def exists(conn: Conn, name: str) -> bool:
    row = await (
        await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (regname(name),))
    ).fetchone()
    return bool(row and row[0])


def regname(name: str) -> str:
    """`schema.table` as to_regclass reads it, each part quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split(".", 1))

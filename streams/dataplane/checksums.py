"""Row checksums that two databases compute alike: the source's rows (as the
mapping makes them) in extract, the target's rows in reconcile.

A row's hash is `hash_record_extended` over its values, each column hashed
by its type's own hash function when the type is built in (the same OID and
function in every database) and has one, else by its text (enums, domains,
composites and other user types have other OIDs in another database; json,
point and the like have no hash function). Text prints in one pinned style
(sql.STABLE_TEXT, set by the caller). A set of rows hashes to the sum of its
rows' hashes: independent of order, and additive over chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from streams.dataplane.database import Conn

# Built-in types below this OID are the same in every database.
FIRST_USER_OID = 16384
NATIVE = """
SELECT a.attname, t.oid < %(first)s AND EXISTS (
  SELECT 1 FROM pg_opclass c JOIN pg_am m ON m.oid = c.opcmethod
  WHERE m.amname = 'hash' AND c.opcdefault AND (c.opcintype = t.oid OR (
    c.opcintype = 'anyarray'::regtype AND t.typelem < %(first)s AND t.typelem <> 0
    AND EXISTS (SELECT 1 FROM pg_opclass e WHERE e.opcmethod = m.oid AND e.opcdefault
                AND e.opcintype = t.typelem))))
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %(rel)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


async def natively_hashed(conn: Conn, regname: str) -> list[bool]:
    """Per column of table `regname` (quoted), whether its own type hashes it."""
    rows = await (await conn.execute(NATIVE, {"first": FIRST_USER_OID, "rel": regname})).fetchall()
    return [bool(native) for _, native in rows]


def row_hash(values: Sequence[sql.Composable], native: Sequence[bool]) -> sql.Composed:
    """The hash of one row whose columns are `values`."""
    parts = [
        v if n else sql.SQL("({})::text").format(v) for v, n in zip(values, native, strict=True)
    ]
    return sql.SQL("hash_record_extended(ROW({}), 0)").format(sql.SQL(", ").join(parts))


def figures(
    values: Sequence[sql.Composable],
    native: Sequence[bool],
    rel: sql.Composable,
    where: sql.Composable | None = None,
) -> sql.Composed:
    """Count and checksum (as text) of the rows of `rel` (alias `s`)."""
    return sql.SQL("SELECT count(*), coalesce(sum({}), 0)::text FROM {} AS s{}").format(
        row_hash(values, native),
        rel,
        sql.SQL(" WHERE {}").format(where) if where is not None else sql.SQL(""),
    )

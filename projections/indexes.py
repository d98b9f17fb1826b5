"""Secondary indexes set aside while a rebuild fills its shadow tables, and
built again, each in one pass, before the swap.

A replay writes every row many times over (one version per event in a
batch). Each row version of `migrations` costs an entry in each of its
indexes, and an index on a column the fold changes (the feed version) makes
every update a new tuple in all of them. Without its secondary indexes the
table's updates stay on their page (HOT), and building an index once over the
finished table is far cheaper than keeping it up to date row by row. Indexes
that back a constraint (primary keys, the events' unique ids) stay: the
projector's upserts and its refusal of a repeated event id rest on them.
"""

from __future__ import annotations

from psycopg import sql

from projections import store


async def set_aside(conn: store.Conn, schema: str) -> list[str]:
    """Drop the indexes of `schema`'s tables that back no constraint; return
    the statements that build them again."""
    cur = await conn.execute(
        "SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class ic ON ic.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = ic.relnamespace"
        " WHERE n.nspname = %s"
        " AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        " ORDER BY ic.relname",
        (schema,),
    )
    found: list[tuple[str, str]] = await cur.fetchall()
    for name, _ in found:
        await conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    return [definition for _, definition in found]


async def build(conn: store.Conn, definitions: list[str]) -> None:
    """Build the indexes `set_aside` dropped (their definitions name their schema)."""
    for definition in definitions:
        await conn.execute(definition.encode())

"""The write freeze of a cutover: a statement trigger on the source table
that refuses INSERT, UPDATE, DELETE and TRUNCATE with an error naming the
migration. `freeze` installs it (CREATE TRIGGER waits for the writes in
flight, which hold locks it conflicts with, so every write committed before
it returns is in the WAL before the freeze point it returns) and `unfreeze`
removes it: by hand, `DROP TRIGGER migrator_cutover_freeze ON <table>`.

A cutover that is stopped before its switch unfreezes; so does every sync
run as it starts (a cutover whose worker was killed leaves the trigger, and
an aborted cutover goes back to sync) and the cleanup of a cancel. A
completed cutover leaves the source frozen: the application writes to the
target from then on, and a late write to the source would be lost.
"""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql

from domain.spec import table_parts
from streams.dataplane.database import Conn
from streams.dataplane.sql import table as identifier

TRIGGER = "migrator_cutover_freeze"
FUNCTION = """
CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table %.% is frozen for the cutover of migration %',
    TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'read_only_sql_transaction';
END $$
"""


def _function(table: str) -> sql.Identifier:
    parts = table_parts(table)
    return sql.Identifier(*parts[:-1], TRIGGER) if len(parts) > 1 else sql.Identifier(TRIGGER)


async def freeze(conn: Conn, table: str, migration_id: str) -> str:
    """Refuse writes to `table` from now on; the WAL position once it holds."""
    async with conn.transaction():
        await conn.execute(sql.SQL(FUNCTION).format(_function(table)))
        await conn.execute(
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(TRIGGER), identifier(table)
            )
        )
        await conn.execute(
            sql.SQL(
                "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {}"
                " FOR EACH STATEMENT EXECUTE FUNCTION {}({})"
            ).format(
                sql.Identifier(TRIGGER),
                identifier(table),
                _function(table),
                sql.Literal(migration_id),
            )
        )
    found = await (await conn.execute("SELECT pg_current_wal_lsn()::text")).fetchone()
    assert found is not None
    return str(found[0])


async def unfreeze(conn: Conn, table: str) -> bool:
    """Let writes to `table` through again (False: it was not frozen)."""
    if not await frozen(conn, table):
        return False
    async with conn.transaction():
        await conn.execute(
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(TRIGGER), identifier(table)
            )
        )
    # kept while another table of the schema is frozen by another cutover
    with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
        await conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(_function(table)))
    return True


async def frozen(conn: Conn, table: str) -> bool:
    found = await conn.execute(
        "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = %s",
        (".".join(f'"{p}"' for p in table_parts(table)), TRIGGER),
    )
    return await found.fetchone() is not None

"""The API's database role (`migrator_api`) tries what least privilege forbids,
and fails: writing (even with read-only switched off), creating a table, a
schema or a temporary table, connecting to another database of the cluster;
and a NOTIFY it sends only wakes the API's readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from api.app import api_database_url
from api.changes import ChangeHub
from config import Settings
from projections.store import CHANNEL
from tests.support.read_side import prepare_schema

pytestmark = pytest.mark.integration
TABLES = (
    "migrations",
    "migration_events",
    "migration_phases",
    "feed_version",
    "projection_offsets",
    "schema_migrations",
)
WRONG = ('{"m": 1}', '{"m": null}', "[1]", "not json", '{"m": ["m-2"]}', '{"feed": 1}')
Conn = psycopg.AsyncConnection[tuple[object, ...]]


@pytest.fixture
async def api_conn(settings: Settings) -> AsyncIterator[Conn]:
    await prepare_schema(settings)
    async with await psycopg.AsyncConnection.connect(
        api_database_url(settings), autocommit=True
    ) as conn:
        yield conn


async def refused(conn: Conn, statement: str | sql.Composed) -> None:
    query = statement.encode() if isinstance(statement, str) else statement
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await conn.execute(query)


async def test_with_read_only_switched_off_the_api_role_still_cannot_write(
    api_conn: Conn,
) -> None:
    await api_conn.execute("SET default_transaction_read_only = off")
    await api_conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
    for table in TABLES:
        name = sql.Identifier(table)
        await refused(api_conn, sql.SQL("INSERT INTO {} DEFAULT VALUES").format(name))
        await refused(api_conn, sql.SQL("UPDATE {} SET {} = NULL").format(name, _first(table)))
        await refused(api_conn, sql.SQL("DELETE FROM {}").format(name))
        await refused(api_conn, sql.SQL("TRUNCATE {}").format(name))


def _first(table: str) -> sql.Identifier:
    return sql.Identifier(
        {"feed_version": "id", "projection_offsets": "projection"}.get(
            table, "version" if table == "schema_migrations" else "migration_id"
        )
    )


async def test_the_api_role_cannot_create_a_table_a_schema_or_a_temporary_table(
    api_conn: Conn,
) -> None:
    await api_conn.execute("SET default_transaction_read_only = off")
    await refused(api_conn, "CREATE TABLE public.intruder (id int)")
    await refused(api_conn, "CREATE SCHEMA intruder")
    await refused(api_conn, "CREATE TEMPORARY TABLE intruder (id int)")


async def test_the_api_role_connects_to_no_other_database_of_the_cluster(
    settings: Settings, api_conn: Conn
) -> None:
    for other in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            await psycopg.AsyncConnection.connect(
                make_conninfo(api_database_url(settings), dbname=other)
            )


async def test_a_role_not_granted_the_read_model_cannot_connect_to_it(
    settings: Settings, unique: str, api_conn: Conn
) -> None:
    owner = settings.database.url.get_secret_value()
    stranger = f"t_stranger_{unique}"
    async with await psycopg.AsyncConnection.connect(owner, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
    try:
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            await psycopg.AsyncConnection.connect(make_conninfo(owner, user=stranger))
    finally:
        async with await psycopg.AsyncConnection.connect(owner, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(stranger)))


async def test_the_api_role_holds_select_and_nothing_else(api_conn: Conn) -> None:
    writable = await api_conn.execute(
        "SELECT c.relname, p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"
        " unnest(ARRAY['INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
        " AND has_table_privilege(current_user, c.oid, p)"
    )
    creatable = await api_conn.execute(
        "SELECT nspname FROM pg_namespace WHERE has_schema_privilege(current_user, oid, 'CREATE')"
    )
    database = await api_conn.execute(
        "SELECT has_database_privilege(current_database(), 'CREATE'),"
        " has_database_privilege(current_database(), 'TEMPORARY')"
    )
    role = await api_conn.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,"
        " ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid"
        "       WHERE m.member = r.oid)"
        " FROM pg_roles r WHERE rolname = current_user"
    )
    assert await writable.fetchall() == []
    assert await creatable.fetchall() == []
    assert await database.fetchone() == (False, False)
    assert await role.fetchone() == (False, False, False, False, False, ["migrator_reader"])


async def test_a_notify_from_the_api_role_only_wakes_the_readers(
    settings: Settings, api_conn: Conn
) -> None:
    # given: the API's change listener, and a reader watching one migration
    hub = ChangeHub(api_database_url(settings))
    await hub.start()
    try:
        await asyncio.wait_for(hub.listening.wait(), 30)
        with hub.watch("m-1") as watch:
            # when: the API's role sends payloads of every wrong shape, then a true one
            for payload in (*WRONG, '{"m": {"m-1": 9}}'):
                await api_conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                # then: each wakes the reader (to read again): the listener is still there
                assert await watch.wait(30), payload
    finally:
        await hub.stop()

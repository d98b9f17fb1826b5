"""Source and target databases for data-plane tests: fresh databases on the
test stack's PostgreSQL, named connections pointing at them, and tables with
awkward data (mixed types, NULLs, unicode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from config.connections import Connection
from tests.support.stack import drop_database


@contextmanager
def fresh_database(admin_url: str, name: str) -> Iterator[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        drop_database(admin_url, name)


def connection_for(url: str, **extra: Any) -> Connection:
    """The named-connection settings that reach the database at `url`."""
    parts = conninfo_to_dict(url)
    return Connection(
        host=str(parts.get("host", "127.0.0.1")),
        port=int(parts.get("port", 5432)),
        database=str(parts["dbname"]),
        user=str(parts.get("user", "postgres")),
        **extra,
    )


CUSTOMERS = """
CREATE TABLE customers (
    id          bigint PRIMARY KEY,
    name        text,
    email       text,
    country     char(2),
    balance     numeric(12, 2),
    score       double precision,
    active      boolean,
    born        date,
    created_at  timestamptz,
    tags        text[],
    profile     jsonb,
    avatar      bytea
)
"""
NAMES = ["Zoë", "Björk", "山田太郎", "O'Brien", "Nguyễn", "Ω-team", "Ana\tTab", "plain"]
NAMES_SQL = "ARRAY[" + ", ".join("'" + n.replace("'", "''") + "'" for n in NAMES) + "]"


def create_customers(url: str, rows: int, table: str = "customers") -> None:
    """`rows` customers with every kind of value, NULLs in every column but
    the key, generated in SQL (fast for 100k rows and more)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CUSTOMERS.replace("customers", table, 1))
        conn.execute(
            f"""
            INSERT INTO {table}
            SELECT g,
                   CASE WHEN g % 17 = 0 THEN NULL
                        ELSE ({NAMES_SQL})[1 + g % {len(NAMES)}] || ' ' || g END,
                   CASE WHEN g % 13 = 0 THEN NULL ELSE 'user' || g || '@example.org' END,
                   CASE WHEN g % 11 = 0 THEN NULL
                        ELSE (ARRAY['de','fr','jp','vn','us'])[1 + g % 5] END,
                   CASE WHEN g % 7 = 0 THEN NULL ELSE round((g * 3.17)::numeric % 10000, 2) END,
                   CASE WHEN g % 19 = 0 THEN NULL ELSE g / 7.0 END,
                   CASE WHEN g % 23 = 0 THEN NULL ELSE g % 2 = 0 END,
                   CASE WHEN g % 29 = 0 THEN NULL ELSE date '1950-01-01' + (g % 20000) END,
                   CASE WHEN g % 31 = 0 THEN NULL
                        ELSE timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute' END,
                   CASE WHEN g % 37 = 0 THEN NULL ELSE ARRAY['t' || (g % 3), 'ü' || (g % 5)] END,
                   CASE WHEN g % 41 = 0 THEN NULL
                        ELSE jsonb_build_object('n', g, 'name', '名前' || g) END,
                   CASE WHEN g % 43 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END
            FROM generate_series(1, {rows}) AS g
            """
        )

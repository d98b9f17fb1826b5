"""Seed the demo: a `legacy` database with a customers table to migrate, and
an empty `warehouse` database, on the local PostgreSQL (idempotent).

    .local/venv/bin/python scripts/demo_data.py [rows]
"""

from __future__ import annotations

import sys

import psycopg
from psycopg.conninfo import make_conninfo

from config import load_settings

DATABASES = ("demo_legacy", "demo_warehouse")
CUSTOMERS = """
CREATE TABLE IF NOT EXISTS customers (
    id bigint PRIMARY KEY, name text, email text, country text,
    balance numeric(12, 2), signed_up date, tags text[]
)
"""
FILL = """
INSERT INTO customers
SELECT g,
       (ARRAY['  Zoë Weiß', 'Björk  ', '山田 太郎', 'O''Brien', 'Nguyễn Văn A'])[1 + g %% 5]
         || ' ' || g,
       CASE WHEN g %% 97 = 0 THEN NULL ELSE 'User' || g || '@Example.ORG' END,
       CASE WHEN g %% 53 = 0 THEN NULL ELSE (ARRAY['de', 'fr', 'jp', 'vn', 'us'])[1 + g %% 5] END,
       round((g * 7.31)::numeric %% 100000, 2),
       date '2000-01-01' + g %% 9000,
       ARRAY['t' || g %% 3]
FROM generate_series(1, %s) AS g
ON CONFLICT DO NOTHING
"""


def main(rows: int) -> None:
    admin = load_settings().database.url.get_secret_value()
    with psycopg.connect(admin, autocommit=True) as conn:
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        for name in DATABASES:
            if name not in have:
                conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(make_conninfo(admin, dbname="demo_legacy"), autocommit=True) as conn:
        conn.execute(CUSTOMERS)
        conn.execute(FILL, (rows,))
        count = conn.execute("SELECT count(*) FROM customers").fetchone()
    print(f"demo data: demo_legacy.customers has {count[0] if count else 0} rows", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)

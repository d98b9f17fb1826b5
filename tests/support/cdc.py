"""Change capture in tests: a spec with `cdc` on, a live source table of
items (a key, text, a number and a large TOASTable value) in a cluster with
wal_level=logical, a writer of every change kind, and row-by-row reads of
both sides."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import psycopg

from domain import MigrationSpec
from streams.dataplane.cdc.capture import Capture, Stepped

ITEMS = """
CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, n int NOT NULL, big text);
ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO items (name, n, big)
  SELECT 'item ' || g, g, CASE WHEN g % 10 = 0 THEN repeat(md5(g::text), 400) END
  FROM generate_series(1, %s) AS g;
"""


def cdc_spec(**fields: Any) -> MigrationSpec:
    """A spec of `items` from `legacy` to `warehouse` with `cdc` on."""
    base: dict[str, Any] = {
        "source_connection": "legacy",
        "source_table": "items",
        "source_key": "id",
        "target_connection": "warehouse",
        "target_table": "items_copy",
        "batch_size": 500,
        **fields,
    }
    return MigrationSpec(cdc=True, **base)


def create_items(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ITEMS.replace("%s", str(int(rows))))


def rows(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT id, name, n, big FROM {table} ORDER BY id").fetchall()


def wal_position(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert found is not None
    return str(found[0])


async def write(url: str, stop: asyncio.Event, seed: int = 1) -> int:
    """Insert, update (the large value too, or only other columns) and delete
    rows of `items` in small transactions until `stop`; the changes made."""
    pick = random.Random(seed)
    made = 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            async with conn.transaction():
                for _ in range(pick.randint(1, 4)):
                    made += await _one(conn, pick)
            await asyncio.sleep(0)
    return made


async def _one(conn: psycopg.AsyncConnection[Any], pick: random.Random) -> int:
    roll = pick.random()
    if roll < 0.4:
        big = f"repeat(md5('{pick.random()}'), 500)" if pick.random() < 0.3 else "NULL"
        done = await conn.execute(
            f"INSERT INTO items (name, n, big) VALUES (%s, %s, {big})", ("new", pick.randint(0, 9))
        )
    elif roll < 0.7:
        done = await conn.execute(
            "UPDATE items SET n = n + 1 WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)"
        )
    elif roll < 0.85:
        done = await conn.execute(
            "UPDATE items SET big = repeat(md5(random()::text), 450), name = name || '!'"
            " WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)"
        )
    else:
        done = await conn.execute(
            "DELETE FROM items WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)"
        )
    return done.rowcount


async def catch_up(capture: Capture, source_url: str) -> Stepped:
    """Step until everything the source wrote so far is applied."""
    upto = wal_position(source_url)
    while True:
        stepped = await capture.step()
        if not stepped.more and _number(stepped.position.lsn) >= _number(upto):
            return stepped


def _number(lsn: str) -> int:
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)

"""A source table that lives while it is copied.

Built fast in SQL (generate_series), its every row version is kept in a
history table `<table>_history` by a trigger, in the writing transaction:
the version's columns, the id of the transaction that wrote it
(`created_xid`, `pg_current_xact_id()`) and of the one that replaced or
deleted it (`deleted_xid`). From that, the table as any snapshot saw it can
be read back (tests.support.as_of). A `Writer` inserts, updates, deletes and
re-keys rows at a steady, bounded rate, in small transactions of its own.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

COLUMNS = ("id", "label", "qty", "price", "ratio", "flag", "at", "doc")
TABLE = """
CREATE TABLE {table} (
    id    bigint PRIMARY KEY,
    label text,
    qty   integer,
    price numeric(12, 2),
    ratio double precision,
    flag  boolean,
    at    timestamptz,
    doc   jsonb
)
"""
FILL = """
INSERT INTO {table}
SELECT g,
       CASE WHEN g % 17 = 0 THEN NULL ELSE 'row ' || g END,
       (g % 1000)::int,
       CASE WHEN g % 7 = 0 THEN NULL ELSE round((g * 1.37)::numeric % 100000, 2) END,
       g / 3.0,
       CASE WHEN g % 23 = 0 THEN NULL ELSE g % 2 = 0 END,
       timestamptz '2024-01-01 00:00+00' + g * interval '1 second',
       CASE WHEN g % 10 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'tag', 'ü' || g % 5) END
FROM generate_series(1, {rows}) AS g
"""
# Every version, written in the transaction that writes the row.
HISTORY = """
CREATE TABLE {table}_history (
    LIKE {table},
    created_xid xid8        NOT NULL DEFAULT pg_current_xact_id(),
    deleted_xid xid8,
    written_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO {table}_history SELECT * FROM {table};
CREATE INDEX ON {table}_history (id) WHERE deleted_xid IS NULL;
CREATE FUNCTION {table}_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF TG_OP <> 'INSERT' THEN
    UPDATE {table}_history SET deleted_xid = pg_current_xact_id()
    WHERE id = OLD.id AND deleted_xid IS NULL;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO {table}_history SELECT NEW.*;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER keep_history AFTER INSERT OR UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {table}_keep();
"""


def create_live_table(url: str, table: str, rows: int) -> None:
    """`table` with keys 1..`rows`, its history holding them, and the trigger
    that keeps it from now on; vacuumed and analysed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE.format(table=table).encode())
        conn.execute(FILL.format(table=table, rows=rows).encode())
        conn.execute(HISTORY.format(table=table).encode())
        for name in (table, f"{table}_history"):
            conn.execute(f"VACUUM (ANALYZE) {name}".encode())


class Writer:
    """Writes to a live table at `rate` statements a second until stopped,
    in transactions of 1 to 3 statements, on keys spread over the whole
    table: updates, inserts past the end and into holes, deletes, re-keys.
    The first error ends it and is kept in `error`."""

    def __init__(self, url: str, table: str, keys: int, rate: float, seed: int = 7) -> None:
        self.url, self.table, self.rate = url, table, rate
        self.rng = random.Random(seed)
        self.keys, self.next_key = keys, keys
        self.tally: Counter[str] = Counter()
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="live-writer", daemon=True)

    @property
    def statements(self) -> int:
        return sum(self.tally.values())

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                self._write(conn)
        except BaseException as exc:  # kept for the test to raise
            self.error = exc

    def _write(self, conn: psycopg.Connection[Any]) -> None:
        started, done = time.monotonic(), 0
        while not self.stopping.wait(max(0.0, started + done / self.rate - time.monotonic())):
            statements = self.rng.randint(1, 3)
            with conn.transaction():
                for _ in range(statements):
                    kind, query, params = self._statement()
                    conn.execute(query, params)
                    self.tally[kind] += 1
            done += statements

    def _statement(self) -> tuple[str, str, tuple[Any, ...]]:
        t, roll, some = self.table, self.rng.random(), self.rng.randint(1, self.next_key)
        if roll < 0.5:
            return "update", UPDATE.format(table=t), (f"changed {some}", self._doc(), some)
        if roll < 0.65:
            self.next_key += 1
            return "insert", INSERT.format(table=t), (self.next_key, self._doc())
        if roll < 0.75:
            return "insert into a hole", INSERT.format(table=t), (some, self._doc())
        if roll < 0.95:
            return "delete", f"DELETE FROM {t} WHERE id = %s", (some,)
        self.next_key += 1
        return "re-key", f"UPDATE {t} SET id = %s WHERE id = %s", (self.next_key, some)

    def _doc(self) -> str:
        return f'{{"w": {self.rng.randint(0, 10**6)}, "tag": "écrit"}}'


UPDATE = """
UPDATE {table} SET label = %s, qty = qty + 1, price = coalesce(price, 0) + 0.01,
  ratio = ratio + 0.5, flag = NOT flag, at = clock_timestamp(), doc = %s::jsonb
WHERE id = %s
"""
INSERT = """
INSERT INTO {table} VALUES (%s, 'written', 7, 12.5, -1.25, true, clock_timestamp(), %s::jsonb)
ON CONFLICT (id) DO NOTHING
"""


@contextmanager
def writing(url: str, table: str, keys: int, rate: float) -> Iterator[Writer]:
    """A `Writer` at work for the block; stopped (and joined) on leaving it."""
    writer = Writer(url, table, keys, rate)
    writer.thread.start()
    try:
        yield writer
    finally:
        writer.stopping.set()
        writer.thread.join(30)

"""Every change to a live source table, numbered, on both sides: the proof
that change capture applies each change once.

The source table `items` (a key, text, a number, a large TOASTed value and
`ver`) gets a new `ver` from a sequence on every insert and update (a BEFORE
trigger), so each row version has a number of its own, and an AFTER trigger
logs every change in `item_changes` (its order `seq`, the operation, the
key, the version written or deleted, and the writing transaction's id). The
target table `items_copy` is created beforehand with a trigger that logs
every row written to it in `applied` the same way: the copy's inserts and
each change capture applied.

Given the copy's snapshot (`pg_current_snapshot()` text), the target's log
must be, key by key and in order: the insert of the version the snapshot
saw (if it saw the row), then every change the snapshot did not see, each
exactly once. A change applied twice, skipped or reordered shows as a key
whose two sequences differ.

`Writer` inserts, updates (the large value, or only other columns of a row
holding one, leaving it TOAST-unchanged) and deletes at a steady rate until
stopped, or until the source is frozen for the cutover.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

SOURCE = """
CREATE SEQUENCE item_versions;
CREATE TABLE items (
    id   bigserial PRIMARY KEY,
    name text NOT NULL,
    n    int NOT NULL,
    big  text,
    ver  bigint NOT NULL DEFAULT 0
);
ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE item_changes (
    seq bigserial PRIMARY KEY,
    op  text   NOT NULL,
    id  bigint NOT NULL,
    ver bigint NOT NULL,
    xid xid8   NOT NULL DEFAULT pg_current_xact_id()
);
CREATE FUNCTION item_version() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  NEW.ver := nextval('item_versions'); RETURN NEW; END $$;
CREATE TRIGGER a_version BEFORE INSERT OR UPDATE ON items
  FOR EACH ROW EXECUTE FUNCTION item_version();
CREATE FUNCTION item_logged() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO item_changes (op, id, ver) VALUES (TG_OP, OLD.id, OLD.ver);
  ELSE
    INSERT INTO item_changes (op, id, ver) VALUES (TG_OP, NEW.id, NEW.ver);
  END IF;
  RETURN NULL; END $$;
CREATE TRIGGER b_logged AFTER INSERT OR UPDATE OR DELETE ON items
  FOR EACH ROW EXECUTE FUNCTION item_logged();
INSERT INTO items (name, n, big)
  SELECT 'item ' || g, g, CASE WHEN g % 10 = 0 THEN repeat(md5(g::text), 400) END
  FROM generate_series(1, {rows}) AS g;
"""
TARGET = """
CREATE TABLE items_copy (
    id   bigserial PRIMARY KEY,
    name text NOT NULL,
    n    int NOT NULL,
    big  text,
    ver  bigint NOT NULL
);
CREATE TABLE applied (
    seq bigserial PRIMARY KEY,
    op  text   NOT NULL,
    id  bigint NOT NULL,
    ver bigint NOT NULL
);
CREATE FUNCTION item_applied() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO applied (op, id, ver) VALUES (TG_OP, OLD.id, OLD.ver);
  ELSE
    INSERT INTO applied (op, id, ver) VALUES (TG_OP, NEW.id, NEW.ver);
  END IF;
  RETURN NULL; END $$;
CREATE TRIGGER logged AFTER INSERT OR UPDATE OR DELETE ON items_copy
  FOR EACH ROW EXECUTE FUNCTION item_applied();
"""
# The version of each row the snapshot saw: its last change it sees, unless a delete.
SEEN = """
SELECT id, ver FROM (
  SELECT DISTINCT ON (id) id, op, ver FROM item_changes
  WHERE pg_visible_in_snapshot(xid, %(xids)s::pg_snapshot) ORDER BY id, seq DESC
) AS last WHERE op <> 'DELETE'
"""
AFTER = """
SELECT op, id, ver FROM item_changes
WHERE NOT pg_visible_in_snapshot(xid, %(xids)s::pg_snapshot) ORDER BY seq
"""
Step = tuple[str, int]  # (operation, version)


def create_source(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE.replace("{rows}", str(int(rows))).encode())
        conn.execute("VACUUM (ANALYZE) items")


def create_target(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TARGET.encode())


@dataclass(frozen=True)
class Logs:
    """Both sides' logs, key by key: `expected` (the snapshot's version, then
    every later source change) and `applied` (what the target wrote), with
    the number of source changes after the snapshot."""

    expected: dict[int, list[Step]]
    applied: dict[int, list[Step]]
    after_snapshot: int
    loaded: int

    def differing(self) -> dict[int, tuple[list[Step], list[Step]]]:
        """(expected, applied) of each key whose logs differ."""
        keys = self.expected.keys() | self.applied.keys()
        return {
            k: (self.expected.get(k, []), self.applied.get(k, []))
            for k in sorted(keys)
            if self.expected.get(k, []) != self.applied.get(k, [])
        }

    def kinds(self) -> Counter[str]:
        return Counter(op for steps in self.applied.values() for op, _ in steps)


def logs(source: str, target: str, xids: str) -> Logs:
    expected: dict[int, list[Step]] = defaultdict(list)
    with psycopg.connect(source) as conn:
        seen = conn.execute(SEEN.encode(), {"xids": xids}).fetchall()
        for key, ver in seen:
            expected[key].append(("INSERT", ver))
        after = conn.execute(AFTER.encode(), {"xids": xids}).fetchall()
        for op, key, ver in after:
            expected[key].append((op, ver))
    applied: dict[int, list[Step]] = defaultdict(list)
    with psycopg.connect(target) as conn:
        for op, key, ver in conn.execute("SELECT op, id, ver FROM applied ORDER BY seq"):
            applied[key].append((op, ver))
    return Logs(dict(expected), dict(applied), len(after), len(seen))


def row_digests(url: str, table: str) -> Iterator[tuple[int, str]]:
    """(key, md5 of the whole row's text) of every row, by key."""
    with psycopg.connect(url) as conn, conn.cursor(name="digests") as cur:
        cur.itersize = 5000
        cur.execute(f"SELECT id, md5(t::text) FROM {table} AS t ORDER BY id".encode())
        yield from cur


def applied_changes(target: str, migration_id: str) -> int:
    """The changes the data plane counts as applied (0 before capture began)."""
    with psycopg.connect(target, autocommit=True) as conn:
        try:
            found = conn.execute(
                "SELECT changes FROM migrator_state.cdc_positions WHERE migration_id = %s",
                (migration_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return 0 if found is None else int(found[0])


@dataclass
class Writer:
    """Writes to `items` at `rate` statements a second, in transactions of 1
    to 3 statements, until stopped or frozen (`frozen`: a write was refused
    as the cutover froze the table). Any other error ends it, kept in `error`."""

    url: str
    keys: int
    rate: float
    seed: int = 5
    tally: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None
    frozen: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def statements(self) -> int:
        return sum(self.tally.values())

    def run(self) -> None:
        rng = random.Random(self.seed)
        started, done = time.monotonic(), 0
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stopping.wait(
                    max(0.0, started + done / self.rate - time.monotonic())
                ):
                    made: Counter[str] = Counter()
                    with conn.transaction():
                        for _ in range(rng.randint(1, 3)):
                            kind, query, params = self._statement(rng)
                            if conn.execute(query, params).rowcount:
                                made[kind] += 1
                            done += 1
                    self.tally.update(made)
        except psycopg.errors.ReadOnlySqlTransaction:
            self.frozen = True
        except BaseException as exc:  # kept for the test to raise
            self.error = exc

    def _statement(self, rng: random.Random) -> tuple[str, str, tuple[Any, ...]]:
        roll, some = rng.random(), rng.randint(1, self.keys)
        pick = "(SELECT id FROM items WHERE id >= %s ORDER BY id LIMIT 1)"
        if roll < 0.3:
            big = f"repeat(md5('{rng.random()}'), 500)" if rng.random() < 0.3 else "NULL"
            self.keys += 1
            return "insert", f"INSERT INTO items (name, n, big) VALUES ('new', 1, {big})", ()
        if roll < 0.55:
            return "update", f"UPDATE items SET n = n + 1 WHERE id = {pick}", (some,)
        if roll < 0.7:  # the large value stays as it is: TOAST-unchanged in the change
            held = "(SELECT id FROM items WHERE id >= %s AND big IS NOT NULL ORDER BY id LIMIT 1)"
            return (
                "update beside a large value",
                f"UPDATE items SET n = n - 1 WHERE id = {held}",
                (some,),
            )
        if roll < 0.85:
            return (
                "update of a large value",
                "UPDATE items SET big = repeat(md5(random()::text), 450), name = name || '!'"
                f" WHERE id = {pick}",
                (some,),
            )
        return "delete", f"DELETE FROM items WHERE id = {pick}", (some,)


@contextmanager
def writing(url: str, keys: int, rate: float) -> Iterator[Writer]:
    """A `Writer` at work in a thread for the block; stopped on leaving it."""
    writer = Writer(url, keys, rate)
    thread = threading.Thread(target=writer.run, name="change-writer", daemon=True)
    thread.start()
    try:
        yield writer
    finally:
        writer.stopping.set()
        thread.join(30)

"""The as-of comparison the live-copy chaos test rests on, against real
PostgreSQL: a live table's history gives back exactly the rows a snapshot
saw (a transaction still open when it was taken included), and a target
that differs from them, by a row missing, an update the snapshot did not
see, a row twice or one too many, is reported as different."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.as_of import as_of, diff, rows_of, unkept_writes
from tests.support.live_table import COLUMNS, create_live_table
from tests.support.stack import Stack
from tests.support.tables import fresh_database

pytestmark = pytest.mark.integration
COPY = "snapshot_copy"


@pytest.fixture
def url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"asof_{unique}") as found:
        create_live_table(found, "live", 20)
        yield found


def snapshot_amid_writes(url: str) -> tuple[str, list[tuple[Any, ...]]]:
    """A snapshot taken while an update is in flight (committed just after),
    then writes of every kind: its pg_current_snapshot() and the rows it read."""
    with psycopg.connect(url) as early, psycopg.connect(url) as reader:
        early.execute("UPDATE live SET label = 'in flight' WHERE id = 1")
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        ((xids,),) = reader.execute("SELECT pg_current_snapshot()::text").fetchall()
        seen = reader.execute(f"SELECT {', '.join(COLUMNS)} FROM live ORDER BY id").fetchall()
        early.commit()
        with psycopg.connect(url, autocommit=True) as late:
            late.execute("UPDATE live SET qty = -1, doc = '{\"late\": 1}' WHERE id = 2")
            late.execute("DELETE FROM live WHERE id = 3")
            late.execute("INSERT INTO live (id, label) VALUES (21, 'late')")
            late.execute("UPDATE live SET id = 22 WHERE id = 4")
        assert reader.execute("SELECT count(*) FROM live").fetchall() == [(20,)]
    return str(xids), seen


def copy_of(url: str, rows: list[tuple[Any, ...]]) -> None:
    """A target table (no key: a row may be there twice) holding `rows`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {COPY} AS SELECT * FROM live WITH NO DATA")
        with conn.cursor() as cur:
            marks = ", ".join(["%s"] * len(COLUMNS))
            values = [tuple(Jsonb(v) if isinstance(v, dict) else v for v in row) for row in rows]
            cur.executemany(f"INSERT INTO {COPY} VALUES ({marks})", values)


def write(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.format(copy=COPY).encode())


def test_the_history_gives_back_what_the_snapshot_saw(url: str) -> None:
    xids, seen = snapshot_amid_writes(url)

    assert list(as_of(url, "live", xids)) == seen
    assert [row[1] for row in seen[:1]] == ["row 1"]  # not the update in flight
    assert unkept_writes(url, "live") == 0
    write(url, "ALTER TABLE live DISABLE TRIGGER keep_history; UPDATE live SET qty = 0")
    assert unkept_writes(url, "live") == 2 * 20  # each row's version both ways


@pytest.mark.parametrize(
    ("wrong", "kind", "example"),
    [
        ("DELETE FROM {copy} WHERE id = 7", "missing", 7),
        ("UPDATE {copy} SET label = 'in flight' WHERE id = 1", "changed", 1),
        ("UPDATE {copy} SET doc = NULL WHERE id = 2", "changed", 2),
        ("INSERT INTO {copy} SELECT * FROM {copy} WHERE id = 5", "repeated", 5),
        ("INSERT INTO {copy} (id) VALUES (21)", "extra", 21),
    ],
)
def test_a_target_unlike_the_snapshot_is_reported(
    url: str, wrong: str, kind: str, example: int
) -> None:
    xids, seen = snapshot_amid_writes(url)
    copy_of(url, seen)
    assert diff(as_of(url, "live", xids), rows_of(url, COPY)).same

    write(url, wrong)
    found = diff(as_of(url, "live", xids), rows_of(url, COPY))

    assert not found.same
    assert dict(found.counts) == {kind: 1}
    first = found.examples[kind][0]
    assert (first[0][0] if kind == "changed" else first) == example
    assert kind in str(found)


def test_rows_out_of_key_order_are_refused() -> None:
    with pytest.raises(ValueError, match="not sorted"):
        diff([(1,), (2,)], [(2,), (1,)])

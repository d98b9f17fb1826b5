"""Source keys the data plane takes or refuses, against real PostgreSQL: any
orderable key type migrates row for row; a NULL or repeated key is refused
before anything is copied, with a reason that says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from domain import MigrationSpec
from domain.state import PHASES
from streams.dataplane.database import Databases
from streams.dataplane.errors import SpecError
from tests.support.phases import run_phase
from tests.support.stack import Stack
from tests.support.tables import fresh_database

pytestmark = pytest.mark.integration

# (key type, an expression of g = 1..40 giving 40 distinct keys in that type)
KEYS = {
    "uuid": "md5(g::text)::uuid",
    "text": "'k-' || (g * 7919 % 1000)::text || ' é'",
    "bigint": "g * 10000000000",
    "integer": "g",  # 1..40: an ordering by the key's text would put 9 after 10
    "numeric": "(g / 7.0)::numeric(20, 10)",
    "date": "date '2020-01-01' + g",
    "timestamptz": "timestamptz '2020-01-01 00:00:00.123456+00' + g * interval '1 hour 1 us'",
}


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            for kind, expr in KEYS.items():
                conn.execute(f"CREATE TABLE t_{kind} (k {kind} PRIMARY KEY, v text)")
                conn.execute(
                    f"INSERT INTO t_{kind} SELECT {expr}, 'row ' || g FROM generate_series(1, 40) g"
                )
            conn.execute("CREATE TABLE nulls (k int, v text)")
            conn.execute("INSERT INTO nulls VALUES (1, 'a'), (NULL, 'b'), (NULL, 'c'), (2, 'd')")
            conn.execute("CREATE TABLE repeats (k text, v text)")
            conn.execute(
                "INSERT INTO repeats VALUES ('a', '1'), ('b', '2'), ('a', '3'), ('c', '4'),"
                " ('c', '5'), ('d', '6')"
            )
        yield url


def spec_for(table: str, **fields: Any) -> MigrationSpec:
    base: dict[str, Any] = {
        "source_connection": "legacy",
        "source_table": table,
        "source_key": "k",
        "target_connection": "warehouse",
        "target_table": table,
        "batch_size": 7,
        "parallelism": 2,
    }
    return MigrationSpec(**{**base, **fields})


def rows(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT k::text, v FROM {table} ORDER BY k").fetchall()


@pytest.mark.parametrize("kind", sorted(KEYS))
async def test_an_orderable_key_of_any_type_migrates_row_for_row(
    databases: Databases, source_url: str, target_url: str, kind: str
) -> None:
    spec = spec_for(f"t_{kind}")

    for phase in PHASES:
        await run_phase(databases, spec, phase, migration_id=f"m-{kind}")

    assert len(rows(source_url, f"t_{kind}")) == 40
    assert rows(target_url, f"t_{kind}") == rows(source_url, f"t_{kind}")
    chunks, logged, moved = _chunk_log(target_url, f"m-{kind}")
    assert chunks > 1  # the key's values were cut into ranges (40 rows, 7 a chunk)
    assert logged == chunks  # each chunk committed once
    assert moved == 40  # each chunk's count is of the rows it moved: the log adds up


def _chunk_log(url: str, migration: str) -> tuple[int, int, int]:
    """Extract's chunks, its batch log's rows and the rows they moved."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT (SELECT count(*) FROM migrator_state.checkpoints"
            "        WHERE migration_id = %(m)s AND phase = 'extract'),"
            " count(DISTINCT slice), coalesce(sum(rows), 0) FROM migrator_state.batches"
            " WHERE migration_id = %(m)s AND phase = 'extract'",
            {"m": migration},
        ).fetchone()
    assert found is not None
    return int(found[0]), int(found[1]), int(found[2])


async def test_null_keys_are_refused_before_anything_is_copied_with_their_count(
    databases: Databases, target_url: str
) -> None:
    with pytest.raises(SpecError, match=r"source key k of nulls is NULL in 2 of 4 rows"):
        await run_phase(databases, spec_for("nulls"), "extract", migration_id="m-nulls")

    assert _staging_tables(target_url) == []


async def test_a_repeated_key_is_refused_as_such_with_samples(
    databases: Databases, target_url: str
) -> None:
    with pytest.raises(
        SpecError, match=r"source key k of repeats is not unique: 2 values occur more than once"
    ) as refused:
        await run_phase(databases, spec_for("repeats"), "extract", migration_id="m-repeats")

    assert "e.g. a, c" in str(refused.value)
    assert "constraint" not in str(refused.value)
    assert _staging_tables(target_url) == []


def _staging_tables(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'migrator_staging'"
        ).fetchall()

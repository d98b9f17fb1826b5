"""Source keys the data plane takes or refuses, against real PostgreSQL: any
orderable key type migrates row for row, and so does a composite key (into a
new target and merged into an existing one); a NULL or repeated key, or a
NULL in a column of a composite key or a repeated combination, is refused
before anything is copied, with a reason that says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from domain import MigrationSpec
from domain.state import PHASES
from streams.dataplane import catalog
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
            conn.execute(COMPOSITE)
        yield url


# Two-column keys: neither column is unique on its own. `pairs` has 30 tenants
# (its chunks are ranges of tenant_id), `few_tenants` 3 (too few values to cut
# into as many chunks as asked: its chunks are page ranges); 600 rows each.
COMPOSITE = """
CREATE TABLE pairs (tenant_id int, id int, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO pairs SELECT t, i, 'row ' || t || '/' || i
  FROM generate_series(1, 30) t, generate_series(1, 20) i;
CREATE TABLE few_tenants (tenant_id int, id int, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO few_tenants SELECT t, i, 'row ' || t || '/' || i
  FROM generate_series(1, 3) t, generate_series(1, 200) i;
CREATE TABLE pair_nulls (tenant_id int, id int, v text);
INSERT INTO pair_nulls VALUES (1, 1, 'a'), (1, NULL, 'b'), (2, 1, 'c'), (2, 2, 'd');
CREATE TABLE pair_repeats (tenant_id int, id int, v text);
INSERT INTO pair_repeats VALUES (1, 7, 'a'), (1, 8, 'b'), (2, 3, 'c'), (1, 7, 'd'),
  (2, 7, 'e'), (2, 3, 'f');
CREATE TABLE unique_ids (tenant_id int, id int UNIQUE, v text);
"""


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


def composite(table: str, **fields: Any) -> MigrationSpec:
    """A spec keyed by (tenant_id, id), about 50 rows a chunk."""
    return spec_for(table, source_key="tenant_id, id", batch_size=50, **fields)


def chunks_by(url: str, migration: str) -> set[str]:
    """What extract's chunks are ranges of: key values or ctid pages."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT DISTINCT position->'chunk'->>'by' FROM migrator_state.checkpoints"
            " WHERE migration_id = %s AND phase = 'extract'",
            (migration,),
        ).fetchall()
    return {str(r[0]) for r in found}


def query(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement).fetchall()


PAIRS = "SELECT tenant_id, id, v FROM {} ORDER BY 1, 2"


@pytest.mark.parametrize(("table", "by"), [("pairs", "key"), ("few_tenants", "ctid")])
async def test_a_composite_key_migrates_row_for_row_into_a_new_table(
    databases: Databases, source_url: str, target_url: str, table: str, by: str
) -> None:
    spec = composite(
        table,
        mapping={"tenant": "tenant_id"},  # a key column renamed: the key follows it
        rules=({"rule": "range", "column": "id", "min": 3},),  # ids 1 and 2 fail
        min_score=0.5,
    )

    for phase in PHASES:
        await run_phase(databases, spec, phase, migration_id=f"m-{table}")

    target = query(target_url, f"SELECT tenant, id, v FROM {table} ORDER BY 1, 2")
    assert len(target) == 600 and target == query(source_url, PAIRS.format(table))
    warehouse = await databases.get("warehouse")
    primary = await warehouse.autocommit(lambda c: catalog.primary_key_columns(c, table))
    assert primary == ["tenant", "id"]
    chunks, logged, moved = _chunk_log(target_url, f"m-{table}")
    assert chunks > 1 and (logged, moved) == (chunks, 600)
    assert chunks_by(target_url, f"m-{table}") == {by}
    ((result,),) = query(
        target_url, "SELECT result FROM migrator_state.checkpoints WHERE phase = 'validate'"
    )
    samples = ["(1,1)", "(1,2)", "(2,1)", "(2,2)", "(3,1)"]  # in key order
    assert result["rules"]["range(id)"]["samples"] == samples


async def test_a_composite_key_upserts_into_an_existing_table_by_all_its_columns(
    databases: Databases, source_url: str, target_url: str
) -> None:
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE pairs (tenant_id int, id int, v text, PRIMARY KEY (tenant_id, id))"
        )
        # two rows the copy changes; two it leaves, one in a tenant the source has
        conn.execute(
            "INSERT INTO pairs VALUES (1, 1, 'old'), (2, 5, 'old'), (1, 999, 'kept'),"
            " (99, 1, 'kept')"
        )

    for phase in PHASES:
        await run_phase(databases, composite("pairs"), phase, migration_id="m-upsert")

    expected = sorted(
        [*query(source_url, PAIRS.format("pairs")), (1, 999, "kept"), (99, 1, "kept")]
    )
    assert query(target_url, PAIRS.format("pairs")) == expected
    ((loaded, reconciled),) = query(
        target_url,
        "SELECT (SELECT result->>'how' FROM migrator_state.checkpoints"
        "        WHERE migration_id = 'm-upsert' AND phase = 'load'),"
        " (SELECT result->>'target_rows' FROM migrator_state.checkpoints"
        "        WHERE migration_id = 'm-upsert' AND phase = 'reconcile')",
    )
    assert (loaded, reconciled) == ("upsert", "600")  # the two kept rows are not the copy's


async def test_a_null_in_a_column_of_a_composite_key_is_refused_before_any_copy(
    databases: Databases, target_url: str
) -> None:
    with pytest.raises(SpecError) as refused:
        await run_phase(databases, composite("pair_nulls"), "extract", migration_id="m-pn")

    assert str(refused.value) == (
        "source key (tenant_id, id) of pair_nulls has a NULL column in 1 of 4 rows"
        " (NULL: id in 1); the key must identify every row"
    )
    assert _staging_tables(target_url) == []


async def test_a_repeated_combination_is_refused_before_any_copy_with_samples(
    databases: Databases, target_url: str
) -> None:
    with pytest.raises(SpecError) as refused:
        await run_phase(databases, composite("pair_repeats"), "extract", migration_id="m-pr")

    assert str(refused.value) == (
        "source key (tenant_id, id) of pair_repeats is not unique: 2 combinations occur"
        " more than once, e.g. (1,7), (2,3)"
    )
    assert _staging_tables(target_url) == []


@pytest.mark.parametrize(
    ("table", "key", "held"),
    [
        ("pairs", ("tenant_id", "id"), True),
        ("pairs", ("id", "tenant_id"), True),  # the index's columns, in any order
        ("pairs", ("tenant_id",), False),
        ("unique_ids", ("tenant_id", "id"), True),  # id alone is unique: so is every pair
        ("unique_ids", ("tenant_id",), False),
        ("pair_repeats", ("tenant_id", "id"), False),
    ],
)
async def test_a_unique_index_on_the_keys_columns_spares_the_scan_for_repeats(
    databases: Databases, table: str, key: tuple[str, ...], held: bool
) -> None:
    legacy = await databases.get("legacy")
    assert await legacy.autocommit(lambda c: catalog.has_unique_index(c, table, key)) is held

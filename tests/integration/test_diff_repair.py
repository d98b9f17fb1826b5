"""Row-level diff and repair against real PostgreSQL, phases run directly
(no Kafka): a migrated table whose target is corrupted behind the
migration's back (rows updated, deleted, added) is diffed down to exactly
those keys; a repair re-copies them once; a second diff is clean."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import psycopg
import pytest

from domain import DiffTaken, MigrationSpec, PhaseResult
from domain.state import PHASES
from streams.dataplane import diff, diff_store, reconcile, repair, runner
from streams.dataplane.bisection import Found
from streams.dataplane.comparing import Bisection, Order, Side
from streams.dataplane.context import Finished
from streams.dataplane.database import Databases
from streams.dataplane.errors import ReconcileMismatch
from streams.dataplane.sql import STATE_SCHEMA
from tests.support.phases import legacy_and_warehouse, phase_context, run_phase
from tests.support.stack import Stack
from tests.support.tables import create_customers, fresh_database

pytestmark = pytest.mark.integration
ROWS = 20_000
UPDATED, DELETED, ADDED = ["10", "12345"], ["77", "19999"], ["100001", "100002"]


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        create_customers(url, ROWS)
        yield url


def customers(**fields: Any) -> MigrationSpec:
    base: dict[str, Any] = {
        "source_connection": "legacy",
        "source_table": "customers",
        "source_key": "id",
        "target_connection": "warehouse",
        "target_table": "customers_copy",
        "batch_size": 2000,
    }
    return MigrationSpec(**{**base, **fields})


async def migrated(databases: Databases, spec: MigrationSpec) -> None:
    for phase in PHASES:
        assert isinstance(await run_phase(databases, spec, phase), Finished), phase


def corrupt(url: str, table: str = "customers_copy") -> None:
    """Change the target behind the migration's back."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"UPDATE {table} SET name = 'changed' WHERE id = 10")
        conn.execute(f"UPDATE {table} SET profile = '{{\"n\": 0}}' WHERE id = 12345")
        conn.execute(f"DELETE FROM {table} WHERE id IN (77, 19999)")
        conn.execute(f"INSERT INTO {table} (id, name) VALUES (100001, 'x'), (100002, NULL)")


async def diffed(
    databases: Databases, spec: MigrationSpec, phase: str = "diff", run: int = 2
) -> tuple[Finished | Any, list[PhaseResult]]:
    sent: list[PhaseResult] = []
    ctx = await phase_context(databases, spec, phase, run)

    async def answer(result: PhaseResult) -> None:
        sent.append(result)

    ctx.answer = answer
    return await runner.run(ctx), sent


def keys_of(url: str, kind: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT key->>0 FROM {STATE_SCHEMA}.diff_keys WHERE kind = %s ORDER BY 1", (kind,)
        ).fetchall()
    return sorted((r[0] for r in rows), key=int)


def whole_checksum(url: str, table: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*), sum(hash_record_extended(t.*, 0))::text FROM {table} AS t"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


async def test_a_diff_finds_exactly_the_keys_changed_behind_the_migrations_back(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers()
    await migrated(databases, spec)
    corrupt(target_url)

    outcome, sent = await diffed(databases, spec)

    assert isinstance(outcome, Finished)
    (taken,) = sent
    assert isinstance(taken, DiffTaken)
    assert (taken.missing, taken.extra, taken.different) == (2, 2, 2)
    assert taken.differing == 6  # a new target table holds only the migration's rows
    assert taken.samples == {"missing": DELETED, "extra": ADDED, "different": UPDATED}
    assert (taken.source_rows, taken.target_rows) == (ROWS, ROWS)
    assert taken.ranges_compared > 16 and any(not r["same"] for r in taken.ranges)
    assert taken.snapshot is not None and taken.taken_at
    assert keys_of(target_url, "missing") == DELETED
    assert keys_of(target_url, "extra") == ADDED
    assert keys_of(target_url, "different") == UPDATED


async def test_a_repair_fixes_the_keys_and_the_second_diff_is_clean(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers()
    await migrated(databases, spec)
    corrupt(target_url)
    await diffed(databases, spec)

    outcome, sent = await diffed(databases, spec, "repair", 3)

    assert outcome == Finished(6)
    (after,) = sent
    assert isinstance(after, DiffTaken) and after.phase == "repair"
    assert (after.missing, after.extra, after.different, after.differing) == (0, 0, 0, 0)
    assert whole_checksum(target_url, "customers_copy") == whole_checksum(source_url, "customers")
    assert keys_of(target_url, "missing") == keys_of(target_url, "different") == []


async def test_a_repair_redone_after_its_commit_applies_nothing_twice(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers()
    await migrated(databases, spec)
    corrupt(target_url)
    await diffed(databases, spec)
    ctx = await phase_context(databases, spec, "repair", 3)
    shape = await diff.mapped(ctx)
    apply = partial(repair._apply, ctx, shape, True)
    assert await ctx.target.transaction(apply) == 6
    # after the commit, before its result: the row is changed again behind our back
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute("UPDATE customers_copy SET name = 'again' WHERE id = 10")

    assert await ctx.target.transaction(apply) == 6  # the redo finds the repair done

    with psycopg.connect(target_url) as conn:
        name = conn.execute("SELECT name FROM customers_copy WHERE id = 10").fetchone()
        repairs = conn.execute(
            f"SELECT result FROM {STATE_SCHEMA}.checkpoints WHERE phase = 'repair'"
        ).fetchall()
    assert name == ("again",)  # not re-copied: the repair applied once
    assert len(repairs) == 1 and repairs[0][0]["inserted"] == 4
    assert repairs[0][0]["deleted"] == 4  # 2 updated, 2 extra; the 2 missing were not there


async def test_reconcile_names_the_keys_when_the_target_differs(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers()
    for phase in PHASES[:-1]:
        await run_phase(databases, spec, phase)
    corrupt(target_url)

    ctx = await phase_context(databases, spec, "reconcile")
    sent: list[PhaseResult] = []

    async def answer(result: PhaseResult) -> None:
        sent.append(result)

    ctx.answer = answer
    with pytest.raises(ReconcileMismatch, match="2 missing, 2 extra, 2 different"):
        await reconcile.run(ctx)
    (taken,) = sent
    assert isinstance(taken, DiffTaken) and taken.samples["different"] == UPDATED


async def test_a_clean_reconcile_sends_a_clean_diff(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers()
    for phase in PHASES[:-1]:
        await run_phase(databases, spec, phase)

    outcome, sent = await diffed(databases, spec, "reconcile", 1)

    assert isinstance(outcome, Finished)
    (taken,) = sent
    assert isinstance(taken, DiffTaken)
    assert (taken.differing, taken.source_rows, taken.target_rows) == (0, ROWS, ROWS)
    assert taken.ranges[0]["source_checksum"] == taken.ranges[0]["target_checksum"]


async def test_a_repair_leaves_the_rows_of_a_target_loaded_by_upsert(
    databases: Databases, source_url: str, target_url: str
) -> None:
    create_customers(target_url, 0, "customers_copy")
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute("INSERT INTO customers_copy (id, name) VALUES (500000, 'its own')")
    spec = customers(on_existing="upsert")
    await migrated(databases, spec)
    corrupt(target_url)
    await diffed(databases, spec)

    outcome, sent = await diffed(databases, spec, "repair", 3)

    assert outcome == Finished(4)  # the missing and different keys only
    (after,) = sent
    assert isinstance(after, DiffTaken)
    assert (after.missing, after.different, after.differing) == (0, 0, 0)
    assert after.extra == 3  # its own row and the two added: listed, left alone
    with psycopg.connect(target_url) as conn:
        own = conn.execute("SELECT name FROM customers_copy WHERE id = 500000").fetchone()
    assert own == ("its own",)


@pytest.mark.parametrize("key_type", ["text", "uuid"])
async def test_bisection_over_an_ordered_key_that_is_not_an_integer(
    stack: Stack, unique: str, key_type: str
) -> None:
    """Text and uuid keys are cut at sampled values; tiny leaves force depth."""
    with fresh_database(stack.database_url, f"bis_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in ("a", "b"):
                conn.execute(f"CREATE TABLE {name} (k {key_type} PRIMARY KEY, v int)")
                conn.execute(
                    f"INSERT INTO {name} SELECT md5(g::text)::{key_type}, g"
                    " FROM generate_series(1, 3000) AS g"
                )
            conn.execute("UPDATE b SET v = -1 WHERE v IN (5, 2500)")
            conn.execute("DELETE FROM b WHERE v = 1000")
        found = await _bisect(url, key_type)

    assert (len(found.missing), len(found.extra), len(found.different)) == (1, 0, 2)
    assert found.ranges_compared > 16  # cut more than once


async def _bisect(url: str, key_type: str) -> Found:
    async with (
        await psycopg.AsyncConnection.connect(url) as one,
        await psycopg.AsyncConnection.connect(url) as two,
    ):
        await diff.pinned(one)
        await diff.pinned(two)
        sides = [
            Side(c, psycopg.sql.Identifier(t), (psycopg.sql.SQL("s.v"),), (True,), (k,))
            for c, t, k in (
                (one, "a", psycopg.sql.SQL("s.k")),
                (two, "b", psycopg.sql.SQL("s.k")),
            )
        ]
        walk = Bisection(sides[0], sides[1], Order(key_type, True), leaf_rows=20, factor=4)
        found = await walk.run()
        return found


async def test_repair_refuses_without_a_diff(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers()
    await migrated(databases, spec)
    ctx = await phase_context(databases, spec, "repair", 2)
    await ctx.target.autocommit(diff_store.prepare)

    with pytest.raises(Exception, match="nothing to repair: no diff was taken"):
        await repair.run(ctx)


MAPPING = {
    "full_name": {"from": "name", "trim": True},
    "email": {"case": "upper"},
    "country": {"map": {"de": "DE", "fr": "FR"}, "default": "--"},
    "label": {"concat": ["country", "id"], "separator": "-"},
    "balance": {"cast": "text", "default": "n/a"},
    "avatar": None,
}


async def test_a_mapped_target_is_compared_with_the_source_as_mapped(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers(mapping=MAPPING)
    await migrated(databases, spec)
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute("UPDATE customers_copy SET email = lower(email) WHERE id = 10")
        conn.execute("UPDATE customers_copy SET label = 'x' WHERE id = 12345")
        conn.execute("DELETE FROM customers_copy WHERE id IN (77, 19999)")
        conn.execute("INSERT INTO customers_copy (id) VALUES (100001), (100002)")

    _, sent = await diffed(databases, spec)

    (taken,) = sent
    assert isinstance(taken, DiffTaken)
    assert taken.samples == {"missing": DELETED, "extra": ADDED, "different": UPDATED}
    _, sent = await diffed(databases, spec, "repair", 3)
    (after,) = sent
    assert isinstance(after, DiffTaken) and after.differing == 0 and after.extra == 0


COMPOSITE = """
CREATE TABLE orders (tenant text, id int, amount numeric(10, 2), note text,
                     PRIMARY KEY (tenant, id));
INSERT INTO orders SELECT t, g, g * 1.5, 'n' || g
  FROM unnest(ARRAY['acme', 'globex', 'initech']) AS t, generate_series(1, 3000) AS g;
"""


async def test_a_composite_key_is_diffed_and_repaired_by_all_its_columns(
    stack: Stack, unique: str, target_url: str
) -> None:
    with fresh_database(stack.database_url, f"cmp_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(COMPOSITE)
        spec = customers(source_table="orders", target_table="orders", source_key="tenant, id")
        async with legacy_and_warehouse(url, target_url) as databases:
            await migrated(databases, spec)
            with psycopg.connect(target_url, autocommit=True) as conn:
                conn.execute("UPDATE orders SET amount = 0 WHERE tenant = 'globex' AND id = 7")
                conn.execute("DELETE FROM orders WHERE tenant = 'acme' AND id = 2999")
                conn.execute("INSERT INTO orders VALUES ('zeta', 1, 1, 'extra')")

            _, sent = await diffed(databases, spec)
            (taken,) = sent
            assert isinstance(taken, DiffTaken)
            assert taken.samples == {
                "missing": ["(acme,2999)"],
                "extra": ["(zeta,1)"],
                "different": ["(globex,7)"],
            }
            _, sent = await diffed(databases, spec, "repair", 3)
            (after,) = sent
            assert isinstance(after, DiffTaken) and after.differing == 0
        assert whole_checksum(target_url, "orders") == whole_checksum(url, "orders")


async def test_a_mismatch_whose_diff_fails_still_fails_with_its_figures(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = customers()
    for phase in PHASES[:-1]:
        await run_phase(databases, spec, phase)
    corrupt(target_url)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE customers RENAME TO gone")  # the diff cannot read it

    ctx = await phase_context(databases, spec, "reconcile")

    with pytest.raises(ReconcileMismatch) as failed:
        await reconcile.run(ctx)
    assert "target checksum differs" in str(failed.value)
    assert "the row-by-row diff failed: table customers does not exist" in str(failed.value)

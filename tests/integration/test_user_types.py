"""User-defined column types against real PostgreSQL: extract gives the
target the enums, domains and composite types it lacks (base types first), or
refuses the migration before anything is copied, naming the column and the
type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from domain import MigrationSpec
from streams.dataplane.database import Databases
from streams.dataplane.errors import SpecError
from streams.dataplane.usertypes import DESCRIBE
from tests.support.phases import run_phase
from tests.support.stack import Stack
from tests.support.tables import fresh_database

pytestmark = pytest.mark.integration

SOURCE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE moods (id int PRIMARY KEY, feeling mood);
INSERT INTO moods VALUES (1, 'sad'), (2, 'happy');
CREATE DOMAIN code AS text CHECK (VALUE ~ '^[A-Z]{2}-[0-9]+$');
CREATE DOMAIN short_code AS code NOT NULL CHECK (length(VALUE) < 6);
CREATE TABLE shorts (id int PRIMARY KEY, s short_code);
INSERT INTO shorts VALUES (1, 'AB-1'), (2, 'QQ-42');
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE TABLE spans (id int PRIMARY KEY, span floatrange);
INSERT INTO spans VALUES (1, '[1.5, 2.5)');
CREATE SCHEMA crm;
CREATE TYPE crm.status AS ENUM ('new', 'done');
CREATE TABLE tickets (id int PRIMARY KEY, state crm.status);
INSERT INTO tickets VALUES (1, 'new');
CREATE TYPE visit AS (at timestamptz, feeling mood);
CREATE TABLE visits (id int PRIMARY KEY, history visit[]);
INSERT INTO visits VALUES (1, ARRAY[ROW(now(), 'ok')::visit]);
"""


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SOURCE)
        yield url


def spec_for(table: str, key: str = "id") -> MigrationSpec:
    return MigrationSpec(
        source_connection="legacy",
        source_table=table,
        source_key=key,
        target_connection="warehouse",
        target_table=table,
    )


def execute(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def definition(url: str, schema: str, name: str) -> tuple[Any, ...] | None:
    """Kind and definition of a type as the data plane compares them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path = ''")
        row = conn.execute(
            DESCRIBE + " WHERE n.nspname = %s AND t.typname = %s", (schema, name)
        ).fetchone()
    return None if row is None else tuple(row[3:])


def nothing_staged(url: str) -> bool:
    return execute(url, "SELECT to_regnamespace('migrator_staging') IS NULL") == [(True,)] or (
        execute(
            url,
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = 'migrator_staging'",
        )
        == [(0,)]
    )


async def test_a_missing_domain_is_created_after_the_domain_it_is_built_on(
    databases: Databases, source_url: str, target_url: str
) -> None:
    await run_phase(databases, spec_for("shorts"), "extract")

    for name in ("code", "short_code"):
        assert definition(target_url, "public", name) == definition(source_url, "public", name)
    assert definition(target_url, "public", "short_code") == (
        "d",
        False,
        ["public.code", "NOT NULL", "CHECK ((length((VALUE)::text) < 6))"],
    )


async def test_an_identical_enum_in_the_target_is_used_as_it_is(
    databases: Databases, target_url: str
) -> None:
    execute(target_url, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    execute(target_url, "CREATE TABLE uses_mood (m mood)")  # a second CREATE TYPE would fail

    for phase in ("extract", "transform", "load"):
        await run_phase(databases, spec_for("moods"), phase)

    assert execute(target_url, "SELECT id, feeling::text FROM moods ORDER BY id") == [
        (1, "sad"),
        (2, "happy"),
    ]


async def test_an_enum_with_other_labels_in_the_target_is_refused_before_any_copy(
    databases: Databases, target_url: str
) -> None:
    execute(target_url, "CREATE TYPE mood AS ENUM ('sad', 'happy')")

    with pytest.raises(SpecError) as refused:
        await run_phase(databases, spec_for("moods"), "extract")

    assert str(refused.value).startswith(
        "column feeling has type public.mood, which the target database warehouse has with"
        " another definition: enum (sad, happy) there, enum (sad, ok, happy) in the source"
    )
    assert nothing_staged(target_url)
    assert definition(target_url, "public", "mood") == ("e", False, ["sad", "happy"])


async def test_a_composite_type_with_another_definition_is_refused_naming_the_column(
    databases: Databases, target_url: str
) -> None:
    execute(target_url, "CREATE TYPE visit AS (at date, feeling text)")

    with pytest.raises(SpecError) as refused:
        await run_phase(databases, spec_for("visits"), "extract")

    assert str(refused.value).startswith(
        "column history has type public.visit[], which the target database warehouse has"
        " with another definition: composite type (at date, feeling text) there,"
        " composite type (at timestamp with time zone, feeling public.mood) in the source"
    )
    assert nothing_staged(target_url)


async def test_a_type_the_data_plane_cannot_create_is_refused_before_any_copy(
    databases: Databases, target_url: str
) -> None:
    with pytest.raises(SpecError) as refused:
        await run_phase(databases, spec_for("spans"), "extract")

    assert str(refused.value).startswith(
        "column span has type public.floatrange, which the target database warehouse does"
        " not have: only enums, domains and composite types are created there"
    )
    assert nothing_staged(target_url)


async def test_a_type_whose_schema_the_target_lacks_is_refused(
    databases: Databases, target_url: str
) -> None:
    with pytest.raises(SpecError, match="nor its schema crm: create the schema there first"):
        await run_phase(databases, spec_for("tickets"), "extract")

    assert definition(target_url, "crm", "status") is None
    execute(target_url, "CREATE SCHEMA crm")
    for phase in ("extract", "transform", "load"):
        await run_phase(databases, spec_for("tickets"), phase, migration_id="m-2")
    assert execute(target_url, "SELECT state::text FROM tickets") == [("new",)]


async def test_a_type_nested_in_a_column_type_is_named_with_it(
    databases: Databases, target_url: str
) -> None:
    execute(target_url, "CREATE TYPE mood AS ENUM ('ok')")

    with pytest.raises(SpecError) as refused:
        await run_phase(databases, spec_for("visits"), "extract")

    assert str(refused.value).startswith(
        "column history has type public.visit[], built on public.mood, which the target"
        " database warehouse has with another definition: enum (ok) there"
    )
    assert definition(target_url, "public", "visit") is None  # nothing created on a refusal

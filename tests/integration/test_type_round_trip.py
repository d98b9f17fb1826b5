"""Every type travels, against real PostgreSQL: one table with a column of
each kind the data plane promises to move (awkward values, NULL in every
column) goes through every phase into the target with the identity mapping,
is compared there row by row and column by column, and then goes back into a
fresh table of the source database and is compared again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from domain import MigrationSpec
from domain.state import PHASES
from streams.dataplane.database import Databases
from streams.dataplane.relay import psql
from tests.support.phases import legacy_and_warehouse, run_phase
from tests.support.stack import Stack
from tests.support.tables import fresh_database

pytestmark = pytest.mark.integration

TYPES = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
CREATE DOMAIN code AS text CHECK (VALUE ~ '^[A-Z]{2}-[0-9]+$');
CREATE TYPE visit AS (at timestamptz, feeling mood, codes code[]);
CREATE TABLE every_type (
    id       int PRIMARY KEY,
    t        text,
    n        numeric,
    n_scaled numeric(200, 150),
    f4       real,
    f8       double precision,
    d        date,
    tm       time(6),
    ttz      timetz,
    ts       timestamp,
    tstz     timestamptz,
    iv       interval,
    u        uuid,
    j        json,
    jb       jsonb,
    b        bytea,
    ia       int[],
    ta       text[],
    m2       int[][],
    ip       inet,
    net      cidr,
    flag     boolean,
    feeling  mood,
    c        code,
    moods    mood[],
    v        visit,
    vs       visit[]
);

"""
ROWS = r"""
INSERT INTO every_type VALUES
(1,
 E'emoji 😀𝄞 tab\there\nnew line\r\nback\\slash ''single'' "double" \x01\x1f bell\x07 Zoë 山田',
 -123456789012345678901234567890123456789012345678901234567890.12345678901234567890123456789012345678901234567890123456789,
 0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001,
 'NaN', '-0.0',
 '0001-01-01 BC', '00:00:00', '12:34:56.789012+05:30',
 '1999-12-31 23:59:59.999999', '2024-03-31 02:30:00 Europe/Berlin',
 '1 year 2 mons 3 days 04:05:06.789',
 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
 '{"b": 1,   "a": [1, 2.50, "x"],
  "b": "dup"}',
 '{"z": 1, "a": {"nested": [true, null, 1.0e2]}}',
 '\x00ff00deadbeef00'::bytea,
 '{1,NULL,3}', '{"a b","",NULL,"q\"uote","back\\slash","NULL"}', '{{1,2},{3,NULL}}',
 '192.168.0.1/24', '2001:db8::/32', true, 'it''s "complicated"', 'AB-1',
 '{sad,NULL,"it''s \"complicated\""}', ROW('2024-01-01 12:00+02', 'ok', '{AB-1,NULL}'),
 ARRAY[ROW(NULL, 'happy', '{}')::visit, NULL]),
(2,
 E'',
 1e120,
 -99999999999999999999999999999999999999999999999999.999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999,
 'Infinity', '-Infinity',
 'infinity', '24:00:00', '23:59:59-11',
 'infinity', '2024-01-01 00:00:00+05:45',
 '-1 days +02:00:00',
 '00000000-0000-0000-0000-000000000000',
 '[]', '[]',
 ''::bytea,
 '{}', '{}', '{{NULL,NULL}}',
 '::1', '10.0.0.0/8', false, 'sad', 'ZZ-0', '{}', ROW(NULL, NULL, NULL), '{}'),
(3,
 E'  leading and trailing  ',
 'NaN',
 0,
 '-0.0', 'NaN',
 '-infinity', '23:59:59.999999', '00:00:00+00',
 '-infinity', '1970-01-01 00:00:00 America/St_Johns',
 '178000000 years',
 'ffffffff-ffff-ffff-ffff-ffffffffffff',
 '"just a string\twith a tab"', 'null',
 '\x00'::bytea,
 '{-2147483648,2147483647}', '{"😀","\\t"}', '{{1},{2},{3}}',
 'fe80::1', '2001:db8:abcd::/48', NULL, 'happy', 'QQ-42', '{happy,happy}', NULL, NULL),
(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(5,
 E'1.5e-324 Infinity',
 0.1,
 1.5,
 '3.4028235e38', '2.2250738585072014e-308',
 '2000-02-29', '13:00', '13:00:00+14',
 '2000-01-01 00:00:00', '2038-01-19 03:14:08 Asia/Kathmandu',
 '-00:00:00.000001',
 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12',
 '  {"spaces" :  "kept" }  ', '{"a": 1, "a": 2}',
 decode(repeat('00', 300), 'hex'),
 NULL, '{NULL}', NULL,
 '0.0.0.0/0', '::/0', true, NULL, NULL, NULL, ROW('infinity', 'sad', '{ZZ-9}'), NULL)
"""
# Every column, each by its text form: what a reader of either table sees.
COLUMNS = [
    "id", "t", "n", "n_scaled", "f4", "f8", "d", "tm", "ttz", "ts", "tstz", "iv", "u", "j", "jb",
    "b", "ia", "ta", "m2", "ip", "net", "flag", "feeling", "c", "moods", "v", "vs",
]  # fmt: skip


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(TYPES)
            conn.execute(ROWS)
        yield url


@pytest.fixture
async def forward(source_url: str, target_url: str) -> AsyncIterator[Databases]:
    async with legacy_and_warehouse(source_url, target_url) as found:
        yield found


@pytest.fixture
async def backward(source_url: str, target_url: str) -> AsyncIterator[Databases]:
    """`legacy` is the first run's target, `warehouse` its source."""
    async with legacy_and_warehouse(target_url, source_url) as found:
        yield found


def spec(source_table: str, target_table: str) -> MigrationSpec:
    return MigrationSpec(
        source_connection="legacy",
        source_table=source_table,
        source_key="id",
        target_connection="warehouse",
        target_table=target_table,
        batch_size=2,
        parallelism=2,
    )


async def migrate(dbs: Databases, source_table: str, target_table: str, mid: str) -> None:
    for phase in PHASES:
        await run_phase(dbs, spec(source_table, target_table), phase, migration_id=mid)


def text_rows(url: str, table: str) -> list[tuple[Any, ...]]:
    """Each row, each column by its text form (in one fixed time zone)."""
    cols = ", ".join(f"{c}::text" for c in COLUMNS)
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute(f"SELECT {cols} FROM {table} ORDER BY id").fetchall()


def column_types(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,),
        ).fetchall()


def differences(
    want: list[tuple[Any, ...]], got: list[tuple[Any, ...]]
) -> list[tuple[Any, str, Any, Any]]:
    """(key, column, source text, target text) of every cell that differs."""
    found = [
        (w[0], col, a, b)
        for w, g in zip(want, got, strict=True)
        for col, a, b in zip(COLUMNS, w, g, strict=True)
        if a != b
    ]
    return found


@pytest.mark.parametrize("relay", ["psql", "python"])
async def test_every_type_travels_there_and_back_row_for_row(
    forward: Databases,
    backward: Databases,
    source_url: str,
    target_url: str,
    relay: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHASE_COPY_RELAY", relay)  # psql's C client, or the worker itself
    if relay == "psql":
        assert psql() is not None
    original = text_rows(source_url, "every_type")
    assert len(original) == 5 and all(v is None for v in original[3][1:])

    await migrate(forward, "every_type", "every_type", "m-there")
    there = text_rows(target_url, "every_type")
    assert len(there) == len(original)
    assert differences(original, there) == []
    assert column_types(target_url, "every_type") == column_types(source_url, "every_type")

    await migrate(backward, "every_type", "every_type_back", "m-back")
    back = text_rows(source_url, "every_type_back")
    assert len(back) == len(original)
    assert differences(original, back) == []
    assert column_types(source_url, "every_type_back") == column_types(source_url, "every_type")

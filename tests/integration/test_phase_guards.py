"""A phase against statements that would run for a long time, on real
PostgreSQL databases (no Kafka): a statement past its timeout fails the phase
once, with the reason, and leaves the breaker closed; a run asked to stop
while a statement waits cancels it on the server and halts, in every phase,
and resumes from its checkpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from domain import MigrationSpec, PhaseErrored, PhaseHalted
from domain.state import PHASES
from streams.dataplane import runner
from streams.dataplane.breaker import BreakerState
from streams.dataplane.context import Finished, PhaseContext
from streams.dataplane.database import Databases
from streams.dataplane.sql import staging_name
from tests.support.phases import legacy_and_warehouse, phase_context, run_phase
from tests.support.stack import Stack
from tests.support.tables import fresh_database

pytestmark = pytest.mark.integration

PEOPLE = """
CREATE TABLE people (id int PRIMARY KEY, email text, ref int);
INSERT INTO people SELECT g, 'p' || g || '@x.org', 1 + g % 3 FROM generate_series(1, 20) AS g;
"""
# A function that counts its calls in a sequence (nextval survives a
# rollback, so it counts every try of a statement) and then sleeps: a
# statement that calls it runs until something stops it.
SLOW = """
CREATE SEQUENCE tries;
CREATE FUNCTION slow() RETURNS boolean LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN PERFORM nextval('tries'); PERFORM pg_sleep(3600); RETURN true; END $$;
"""
# The same without the count: the source is read in read-only transactions
# (extract's snapshot), where nextval is refused; tries there are counted by
# the data plane's retry counter instead.
SLOW_READ_ONLY = """
CREATE FUNCTION slow() RETURNS boolean LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN PERFORM pg_sleep(3600); RETURN true; END $$;
"""
RETRIED = "migrator_phase_retries_total"
BOUND = 60  # seconds: far more than a stop or a 1 s timeout takes, far less than the sleep
# Generous timeouts, so that only what a test sets ends a statement (a lock
# wait would end after half the statement timeout).
PATIENT = {"statement_timeout_seconds": 3600, "retry_attempts": 6}


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(PEOPLE)
            conn.execute(SLOW_READ_ONLY)
            conn.execute("CREATE VIEW slow_people AS SELECT * FROM people WHERE slow()")
        yield url


@pytest.fixture
def target_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"tgt_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE refs (id int PRIMARY KEY)")
            conn.execute("INSERT INTO refs SELECT generate_series(1, 5)")
            conn.execute(SLOW)
            conn.execute("CREATE VIEW slow_refs AS SELECT id FROM refs WHERE slow()")
        yield url


def people(**fields: Any) -> MigrationSpec:
    base: dict[str, Any] = {
        "source_connection": "legacy",
        "source_table": "people",
        "source_key": "id",
        "target_connection": "warehouse",
        "target_table": "people",
        "batch_size": 5,
        "parallelism": 2,
    }
    return MigrationSpec(**{**base, **fields})


def tries(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM tries")
        return int(row.fetchone()[0])  # type: ignore[index]


def retries(connection: str) -> float:
    return REGISTRY.get_sample_value(RETRIED, {"connection": connection}) or 0.0


def assert_breakers_closed(databases: Databases) -> None:
    for database in databases.by_name.values():
        assert (database.breaker.state, database.breaker.failures) == (BreakerState.CLOSED, 0)


async def outcome(ctx: PhaseContext) -> Any:
    return await asyncio.wait_for(runner.result_of(ctx, paused=lambda: True), BOUND)


async def test_a_validation_statement_past_its_timeout_fails_the_phase_once_saying_so(
    source_url: str, target_url: str
) -> None:
    rule = {"rule": "foreign_key", "column": "ref", "table": "slow_refs", "references": "id"}
    spec = people(rules=(rule,), min_score=0.0)
    async with legacy_and_warehouse(
        source_url, target_url, **PATIENT, validation_timeout_seconds=1
    ) as databases:
        for phase in ("extract", "transform"):
            await run_phase(databases, spec, phase)

        result = await outcome(await phase_context(databases, spec, "validate"))

        assert isinstance(result, PhaseErrored), result
        assert "validation of the rules was cancelled" in result.reason  # one scan for all
        assert "statement timeout" in result.reason
        assert "PHASE_VALIDATION_TIMEOUT_SECONDS (1 s)" in result.reason
        assert tries(target_url) == 1
        assert_breakers_closed(databases)


async def test_a_statement_past_the_statement_timeout_fails_the_phase_once(
    source_url: str, target_url: str
) -> None:
    spec = people(source_table="slow_people")
    retried_before = retries("legacy")
    async with legacy_and_warehouse(
        source_url, target_url, statement_timeout_seconds=1, retry_attempts=6
    ) as databases:
        result = await outcome(await phase_context(databases, spec, "extract"))

        assert isinstance(result, PhaseErrored), result
        assert result.reason == (
            "legacy: QueryCanceled: canceling statement due to statement timeout"
        )
        assert retries("legacy") == retried_before  # tried once, never again
        assert_breakers_closed(databases)


# The table whose lock holds up each phase's first statement that reads rows.
LOCKED = {
    "extract": ("source", "people"),
    # the mapping ran in extract: transform reads only extract's checkpoints
    "transform": ("target", "migrator_state.checkpoints"),
    "validate": ("target", staging_name("m-1", "rows")),
    "load": ("target", staging_name("m-1", "rows")),
    "reconcile": ("target", "people"),  # the target, swapped in; the source is not read again
}


@pytest.fixture
async def databases(source_url: str, target_url: str) -> AsyncIterator[Databases]:
    async with legacy_and_warehouse(source_url, target_url, **PATIENT) as found:
        yield found


@pytest.mark.parametrize("phase", PHASES)
async def test_a_stop_cancels_the_statement_in_flight_and_the_phase_halts_then_resumes(
    databases: Databases, source_url: str, target_url: str, phase: str
) -> None:
    rule = {"rule": "pattern", "column": "email", "pattern": "^[^@]+@[^@]+$"}
    spec = people(rules=(rule,))
    for before in PHASES[: PHASES.index(phase)]:
        assert isinstance(await run_phase(databases, spec, before), Finished)
    side, name = LOCKED[phase]
    url = source_url if side == "source" else target_url
    ctx = await phase_context(databases, spec, phase)

    async with await psycopg.AsyncConnection.connect(url) as locker:
        await locker.execute(f"LOCK TABLE {_quoted(name)} IN ACCESS EXCLUSIVE MODE")
        running = asyncio.ensure_future(outcome(ctx))
        await until(lambda: waiting_on_a_lock(url), True)
        ctx.stop.set()
        result = await running
        await until(lambda: waiting_on_a_lock(url), False)
        await locker.rollback()

    assert isinstance(result, PhaseHalted), result
    assert_breakers_closed(databases)
    # The cancelled connection was closed, not handed back to the pool.
    assert databases.by_name[_name(side)].pool.get_stats().get("returns_bad", 0) >= 1
    assert isinstance(await run_phase(databases, spec, phase, run=2), Finished)


def _name(side: str) -> str:
    return "legacy" if side == "source" else "warehouse"


def _quoted(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


async def waiting_on_a_lock(url: str) -> bool:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cur.fetchone()
        return bool(row and row[0])


async def until(check: Any, wanted: bool, every: float = 0.1) -> None:
    """Wait, at most BOUND seconds, until `await check()` is `wanted`."""
    for _ in range(int(BOUND / every)):
        if await check() is wanted:
            return
        await asyncio.sleep(every)
    raise AssertionError(f"{check} was not {wanted} within {BOUND} s")

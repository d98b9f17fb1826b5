"""Database restarts are ridden out (DESIGN.md sections 6 and 10): a cluster
of the module's own is crashed (`pg_ctl -m immediate`) under a running phase
and under the API, and brought back.

- A phase whose target (or source) crashes mid-run and comes back ~8 s later
  completes by itself, and the target equals the source row by row.
- With a tiny retry budget and the target kept down, the phase fails with a
  reason that names the connection and says it cannot connect.
- After the read model's database crashes and comes back, the API's first
  read succeeds (no dead pooled connection is handed out).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import psycopg
import pytest
from prometheus_client import REGISTRY

from config import Settings
from domain import MigrationSpec, RunPhase
from domain.spec import parse_spec_parts
from streams.dataplane import runner
from streams.dataplane.context import Finished, Limiter, PhaseContext, Progress
from streams.dataplane.database import Databases
from streams.dataplane.errors import TransientError
from tests.support.data_plane import spec
from tests.support.pg_cluster import Cluster
from tests.support.phases import run_phase
from tests.support.read_side import call, prepare_schema, serving, with_tokens
from tests.support.stack import Stack, free_port
from tests.support.tables import connection_for, create_customers, fresh_database

pytestmark = pytest.mark.integration
ROWS = 60_000
OUTAGE_SECONDS = 8


@pytest.fixture
def cluster(crashable: Cluster) -> Cluster:
    return crashable


@pytest.fixture(scope="module")
def source_url(stack: Stack) -> Iterator[str]:
    """The source, on the test stack's PostgreSQL: it stays up."""
    with fresh_database(stack.database_url, f"src_{uuid.uuid4().hex[:10]}") as url:
        create_customers(url, ROWS)
        yield url


@pytest.fixture
def target_url(cluster: Cluster, unique: str) -> Iterator[str]:
    with cluster.database(f"tgt_{unique}") as url:
        yield url


def databases(source_url: str, target_url: str, **phase: Any) -> Databases:
    """`legacy` and `warehouse`, with two tries for a lost race: a database
    away is bounded by the time budget, not by them."""
    connections = {"legacy": connection_for(source_url), "warehouse": connection_for(target_url)}
    return Databases(Settings(phase={"connections": connections, "retry_attempts": 2, **phase}))


def retries(connection: str) -> float:
    found = REGISTRY.get_sample_value("migrator_phase_retries_total", {"connection": connection})
    return found or 0.0


async def extract_while(
    dbs: Databases, migration: MigrationSpec, fault: Any, migration_id: str = "m-1"
) -> Any:
    """Run extract; once its first batch is in, run `fault(progress)` beside it."""
    mapping, rules = parse_spec_parts(migration.mapping, migration.rules)
    seen: list[Progress]
    started, seen = asyncio.Event(), []

    def report(progress: Progress) -> None:
        seen.append(progress)
        started.set()

    task = RunPhase(
        task_id=f"task-{migration_id}-extract-1",
        migration_id=migration_id,
        phase="extract",
        run=1,
        spec=migration,
    )
    source, target = await dbs.get("legacy"), await dbs.get("warehouse")
    ctx = PhaseContext(task, source, target, mapping, rules, Limiter(4), "test-worker", report)

    async def faulted() -> Any:
        await started.wait()
        return await fault(seen[-1])

    outcome, at_fault = await asyncio.gather(runner.run(ctx), faulted())
    return outcome, at_fault


def row_digests(url: str, table: str = "customers") -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT c.id, md5(c::text) FROM {table} AS c ORDER BY c.id").fetchall()


async def crashed_and_back_mid_extract(
    cluster: Cluster, source_url: str, target_url: str, crashed: str
) -> None:
    """Extract, with `cluster` (holding the database of connection `crashed`)
    crashed after the first batch and back OUTAGE_SECONDS later; then
    transform and load. Every phase finishes, and no operator retried it.
    The outage outlasts several pool timeouts."""
    dbs = databases(source_url, target_url, pool_timeout_seconds=3)
    migration = spec(batch_size=200)
    before = retries(crashed)

    async def crash_and_restart(progress: Progress) -> Progress:
        await asyncio.to_thread(cluster.kill)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(cluster.start)
        return progress

    try:
        extracted, at_crash = await extract_while(dbs, migration, crash_and_restart)
        outcomes = [await run_phase(dbs, migration, p) for p in ("transform", "load")]
    finally:
        await dbs.close()

    assert at_crash.rows_done < ROWS  # the crash hit the run, which retried through it
    assert retries(crashed) > before
    assert extracted == Finished(ROWS) and outcomes == [Finished(ROWS), Finished(ROWS)]


async def test_a_target_crashed_mid_phase_and_back_8_s_later_is_ridden_out(
    cluster: Cluster, source_url: str, target_url: str
) -> None:
    await crashed_and_back_mid_extract(cluster, source_url, target_url, "warehouse")

    assert row_digests(target_url) == row_digests(source_url)


async def test_a_source_crashed_mid_phase_and_back_8_s_later_is_ridden_out(
    cluster: Cluster, stack: Stack, unique: str
) -> None:
    with (
        cluster.database(f"src_{unique}") as source_url,
        fresh_database(stack.database_url, f"tgt_{unique}") as target_url,
    ):
        create_customers(source_url, ROWS)
        await crashed_and_back_mid_extract(cluster, source_url, target_url, "legacy")

        assert row_digests(target_url) == row_digests(source_url)


async def test_with_a_tiny_budget_a_target_kept_down_fails_the_phase_saying_why(
    cluster: Cluster, source_url: str, target_url: str
) -> None:
    dbs = databases(source_url, target_url, retry_budget_seconds=3, pool_timeout_seconds=2)

    async def crash(progress: Progress) -> None:
        await asyncio.to_thread(cluster.kill)  # and it stays down until the phase has failed

    try:
        with pytest.raises(TransientError) as failed:
            await extract_while(dbs, spec(batch_size=200), crash)
    finally:
        await dbs.close()

    reason = str(failed.value)
    assert reason.startswith("warehouse: "), reason
    assert "cannot connect" in reason or "not accepting connections" in reason, reason
    assert "busy" not in reason and "circuit breaker" not in reason, reason
    assert "PHASE_RETRY_BUDGET_SECONDS" in reason, reason


@pytest.fixture
async def api_over(stack: Stack, cluster: Cluster, unique: str) -> AsyncIterator[str]:
    """The API serving a read model in the crashable cluster; its base URL."""
    with cluster.database(f"read_{unique}") as url:
        settings = with_tokens(
            Settings(
                kafka={"bootstrap_servers": stack.kafka_bootstrap, "topic_prefix": f"t{unique}."},
                database={"url": url},
                api={"port": free_port()},
            )
        )
        await prepare_schema(settings)
        async with serving(settings) as base:
            yield base


async def test_after_the_read_model_database_restarts_the_first_read_succeeds(
    api_over: str, cluster: Cluster
) -> None:
    async with aiohttp.ClientSession() as session:
        status, _ = await call(session, "GET", f"{api_over}/api/v1/migrations")
        assert status == 200  # a pooled connection now sits idle

        await asyncio.to_thread(cluster.kill)
        await asyncio.to_thread(cluster.start)  # returns once it takes connections
        status, body = await call(session, "GET", f"{api_over}/api/v1/migrations")

    assert status == 200, body


async def test_a_pool_timeout_says_busy_only_when_every_connection_is_in_use(
    source_url: str,
) -> None:
    dbs = databases(source_url, source_url, pool_max=1, pool_timeout_seconds=1, retry_attempts=1)
    try:
        warehouse = await dbs.get("warehouse")
        async with warehouse.connection():  # the only connection, held
            with pytest.raises(TransientError) as failed:
                await warehouse.autocommit(lambda conn: conn.execute("SELECT 1"))
    finally:
        await dbs.close()

    assert str(failed.value).startswith(
        "warehouse: all 1 connections busy (none free within 1 s); gave up after 1 tries"
    ), failed.value

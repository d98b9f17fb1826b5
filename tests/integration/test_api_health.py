"""Health and readiness while a dependency is away: the API stays live
("degraded", naming it) and says it is not ready; both recover with it."""

from __future__ import annotations

import asyncio

import aiohttp
import psycopg
import pytest
from pydantic import SecretStr

from config import KafkaNames, Settings
from tests.support.read_side import call, prepare_schema, serving
from tests.support.stack import free_port

pytestmark = pytest.mark.integration


async def test_health_is_degraded_and_ready_is_503_while_the_read_model_is_away(
    settings: Settings, topics: KafkaNames
) -> None:
    await prepare_schema(settings)
    nowhere = f"postgresql://reader@127.0.0.1:{free_port()}/none"
    away = settings.replace(
        api={"port": free_port(), "auth": "none", "database_url": SecretStr(nowhere)}
    )
    async with aiohttp.ClientSession() as session:
        async with serving(away) as url:
            health = await call(session, "GET", f"{url}/health", None)
            ready = await call(session, "GET", f"{url}/ready", None)
        async with serving(settings.replace(api={"port": free_port(), "auth": "none"})) as url:
            healthy = await call(session, "GET", f"{url}/health", None)

    assert health[0] == 200 and health[1]["status"] == "degraded"
    assert health[1]["checks"]["kafka"] == "ok"
    assert health[1]["checks"]["database"].startswith("unavailable")
    assert ready[0] == 503 and ready[1]["status"] == "not ready"
    assert healthy == (200, {"status": "ok", "checks": {"database": "ok", "kafka": "ok"}})


async def test_ready_answers_while_requests_hold_every_pooled_connection(
    settings: Settings, topics: KafkaNames
) -> None:
    # given: an API with two pooled connections, both held by list requests
    # that wait on a lock the test holds on the migrations table
    await prepare_schema(settings)
    small = settings.replace(api={"port": free_port(), "auth": "none"}, database={"pool_max": 2})
    dsn = settings.database.url.get_secret_value()
    async with (
        await psycopg.AsyncConnection.connect(dsn) as locker,
        aiohttp.ClientSession() as session,
        serving(small) as url,
    ):
        await locker.execute("LOCK TABLE migrations IN ACCESS EXCLUSIVE MODE")
        held = [
            asyncio.create_task(call(session, "GET", f"{url}/api/v1/migrations", None))
            for _ in range(2)
        ]
        try:
            await _until_waiting_on_lock(dsn, 2)

            # when: a probe asks
            ready = await call(session, "GET", f"{url}/ready", None)
        finally:
            await locker.rollback()
        listed = await asyncio.gather(*held)

    # then: the read model is ready (the lock is on one table, not the database)
    assert ready == (200, {"status": "ready", "checks": {"database": "ok", "kafka": "ok"}})
    assert [status for status, _ in listed] == [200, 200]


async def _until_waiting_on_lock(dsn: str, count: int) -> None:
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'migrations'::regclass"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for _ in range(200):
            row = await (await conn.execute(query)).fetchone()
            if row is not None and row[0] >= count:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"not {count} requests waiting on the lock")

"""Health and readiness while a dependency is away: the API stays live
("degraded", naming it) and says it is not ready; both recover with it."""

from __future__ import annotations

import aiohttp
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

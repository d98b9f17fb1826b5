"""Past its bound on commands in flight the API sheds load at once, against
the real broker and database: a command over the bound is answered 503 with
the reason and a Retry-After, and is never published; the places come back
as the commands in flight are answered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from config import KafkaNames, Settings
from streams.kafka.reader import read_committed
from tests.support.gate import shut_gate
from tests.support.read_side import OPERATOR, TOKENS, bearer, prepare_schema, serving
from tests.support.system import SPEC

pytestmark = pytest.mark.integration
WAIT = 60.0  # a bound on waiting for what must happen, not a measure
BOUND = 3


async def test_commands_past_the_bound_are_refused_unpublished_while_the_bus_hangs(
    settings: Settings, topics: KafkaNames
) -> None:
    await prepare_schema(settings)
    async with shut_gate(settings.kafka.bootstrap_servers) as (gate, bootstrap):
        hung = settings.replace(
            kafka={"bootstrap_servers": bootstrap},
            api={"tokens": SecretStr(json.dumps(TOKENS)), "commands_in_flight": BOUND},
        )
        async with serving(hung) as url, aiohttp.ClientSession() as session:
            sent = [asyncio.create_task(_create(session, url, f"m-shed-{i}")) for i in range(5)]
            refused = await _answered(sent, 2)  # the publishes wait behind the gate
            held = [t for t in sent if not t.done()]
            gate.open()
            published = await asyncio.wait_for(asyncio.gather(*held), WAIT)
            after = await _create(session, url, "m-shed-after")

    assert len(held) == BOUND
    for status, body, retry, _ in refused:
        assert (status, retry) == (503, "1")
        assert body["title"] == f"{BOUND} commands already in flight; try again shortly"
    assert [status for status, *_ in published] == [202] * BOUND
    assert after[0] == 202
    keys = {r.key.decode() for r in read_committed(settings, topics.commands) if r.key}
    assert keys == {mid for *_, mid in published} | {"m-shed-after"}


async def _create(
    session: aiohttp.ClientSession, url: str, mid: str
) -> tuple[int, Any, str | None, str]:
    body = {"migration_id": mid, "spec": SPEC}
    async with session.post(f"{url}/api/v1/migrations", json=body, headers=bearer(OPERATOR)) as r:
        return r.status, await r.json(), r.headers.get("Retry-After"), mid


async def _answered(
    tasks: list[asyncio.Task[tuple[int, Any, str | None, str]]], count: int
) -> list[tuple[int, Any, str | None, str]]:
    """Wait (bounded) until `count` of `tasks` are answered; their answers."""
    async with asyncio.timeout(WAIT):
        while sum(t.done() for t in tasks) < count:
            await asyncio.wait([t for t in tasks if not t.done()], return_when="FIRST_COMPLETED")
    return [t.result() for t in tasks if t.done()]

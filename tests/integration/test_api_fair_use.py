"""Fair use of the API by a hostile client, against the real broker and
database: one token cannot take the API away from the probes, from other
tokens or from the operators; slow clients are cut off; a token offered as a
WebSocket subprotocol reaches no log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from api.app import create_app
from api.keys import LETTERS
from config import KafkaNames, Settings
from tests.support.dead_letters import write_dead_letters
from tests.support.gate import shut_gate
from tests.support.read_side import OPERATOR, VIEWER, bearer, call, prepare_schema, serving
from tests.support.stack import free_port
from tests.support.system import token_forms

pytestmark = pytest.mark.integration
OTHER_VIEWER = "another-viewer-token-0123456789"
TOKENS = {OPERATOR: "operator", VIEWER: "viewer", OTHER_VIEWER: "viewer"}
WAIT = 60.0  # a bound on waiting for what must happen, not a measure


def limited(settings: Settings, **api: Any) -> Settings:
    tokens = SecretStr(json.dumps(TOKENS))
    return settings.replace(api={"tokens": tokens, "port": free_port(), **api})


@pytest.fixture
async def schema(settings: Settings, topics: KafkaNames) -> None:
    await prepare_schema(settings)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- expensive reads ------------------------------------------------------------


async def test_ready_answers_while_one_viewer_floods_the_dead_letter_list(
    settings: Settings, topics: KafkaNames, schema: None, session: aiohttp.ClientSession
) -> None:
    write_dead_letters(settings, topics.dlq(topics.commands), topics.commands, [b"a"])
    path = f"/api/v1/dead-letters/{topics.commands}"
    async with shut_gate(settings.kafka.bootstrap_servers) as (gate, bootstrap):
        hung = limited(settings, client_concurrency=2).replace(
            kafka={"bootstrap_servers": bootstrap}
        )
        async with serving(hung) as url:
            lists = [asyncio.create_task(_get(session, url + path, VIEWER)) for _ in range(40)]
            ready = await asyncio.wait_for(_get(session, f"{url}/ready", None), WAIT)
            refused = await _answered(lists, 38)
            in_flight = [t for t in lists if not t.done()]  # the broker is not answering them
            gate.open()
            answered = await asyncio.wait_for(asyncio.gather(*in_flight), WAIT)
            ready_again = await _until_ready(session, url)

    assert ready[0] == 503 and json.loads(ready[1])["checks"]["database"] == "ok"
    assert len(in_flight) == 2  # the viewer's two places, still waiting on Kafka
    assert all(status == 429 and retry for status, _, retry in refused)
    assert [status for status, _, _ in answered] == [200, 200]
    assert ready_again == 200


async def _until_ready(session: aiohttp.ClientSession, url: str) -> int:
    """/ready's status once it is 200, or its last one (a bounded wait)."""
    for _ in range(int(WAIT / 0.2)):
        status = (await _get(session, f"{url}/ready", None))[0]
        if status == 200:
            break
        await asyncio.sleep(0.2)
    return status


async def _get(
    session: aiohttp.ClientSession, url: str, token: str | None
) -> tuple[int, Any, str | None]:
    headers = bearer(token) if token else {}
    async with session.get(url, headers=headers) as resp:
        return resp.status, await resp.text(), resp.headers.get("Retry-After")


async def _answered(
    tasks: list[asyncio.Task[tuple[int, Any, str | None]]], count: int
) -> list[tuple[int, Any, str | None]]:
    """Wait (bounded) until `count` of `tasks` are answered; their answers."""
    async with asyncio.timeout(WAIT):
        while sum(t.done() for t in tasks) < count:
            await asyncio.wait([t for t in tasks if not t.done()], return_when="FIRST_COMPLETED")
    return [t.result() for t in tasks if t.done()]


async def test_an_unchanged_dead_letter_list_is_answered_without_reading_the_topic(
    settings: Settings, topics: KafkaNames, schema: None
) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"a", b"b"])
    path = f"/api/v1/dead-letters/{topics.commands}"
    app = create_app(limited(settings))
    async with TestClient(TestServer(app), headers=bearer(VIEWER)) as client:
        first = await (await client.get(path)).json()
        again = await (await client.get(path)).json()
        reads_then = app[LETTERS].reads
        write_dead_letters(settings, dlq, topics.commands, [b"c"])
        grown = await (await client.get(path)).json()

    assert first == again and len(first["dead_letters"]) == 2
    assert reads_then == 1  # the second list was the first one, kept
    assert sorted(d["key"] for d in grown["dead_letters"]) == ["m-0", "m-0", "m-1"]
    assert app[LETTERS].reads == 2


# --- live slots -------------------------------------------------------------------


async def test_one_token_fills_its_live_share_and_others_still_connect(
    settings: Settings, topics: KafkaNames, schema: None, session: aiohttp.ClientSession
) -> None:
    caps = {"live_max_clients": 4, "live_per_client": 2, "live_operator_reserve": 1}
    async with serving(limited(settings, **caps)) as url, contextlib.AsyncExitStack() as held:
        live = f"{url}/api/v1/live"
        own = [await _socket(held, session, live, VIEWER) for _ in range(3)]
        own_poll = await call(session, "GET", f"{url}/api/v1/changes?timeout=5", VIEWER)
        other = [await _socket(held, session, live, OTHER_VIEWER) for _ in range(2)]
        operator = await _socket(held, session, live, OPERATOR)

    assert own == [101, 101, 429] and own_poll[0] == 429  # one token: its share, no more
    assert other == [101, 503]  # another token connects; the viewers' share is then full
    assert operator == 101  # the operators' reserve is still free


async def _socket(
    held: contextlib.AsyncExitStack, session: aiohttp.ClientSession, url: str, token: str
) -> int:
    """Open a WebSocket kept open until `held` closes; its handshake's status."""
    try:
        ws = await held.enter_async_context(session.ws_connect(url, headers=bearer(token)))
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.receive_json(timeout=WAIT)  # hello
    return 101


# --- slow clients -----------------------------------------------------------------


async def test_a_client_sending_its_body_slowly_is_cut_off(
    settings: Settings, topics: KafkaNames, schema: None
) -> None:
    head = (
        "POST /api/v1/migrations HTTP/1.1\r\nHost: api\r\n"
        f"Authorization: Bearer {OPERATOR}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{"
    )
    async with serving(limited(settings, body_seconds=1.0)) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(head.encode())
        answer = await asyncio.wait_for(reader.read(), WAIT)  # to the end: the server closed
        writer.close()

    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def test_a_client_sending_its_headers_slowly_is_cut_off(
    settings: Settings, topics: KafkaNames, schema: None
) -> None:
    async with serving(limited(settings, header_seconds=1.0)) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(b"GET /health HTTP/1.1\r\nHost: api\r\nX-Slow: ")
        trickle = asyncio.create_task(_trickle(writer))
        answer = await asyncio.wait_for(reader.read(), WAIT)  # to the end: the server closed
        trickle.cancel()
        writer.close()

    assert answer == b""  # cut off, never answered


async def _trickle(writer: asyncio.StreamWriter) -> None:
    """A header one byte at a time, never finished: a slowloris."""
    with contextlib.suppress(ConnectionError):
        while True:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.2)


# --- secrets ----------------------------------------------------------------------


async def test_a_token_offered_only_as_a_subprotocol_is_not_logged(
    settings: Settings,
    topics: KafkaNames,
    schema: None,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    subprotocol = "bearer." + base64.urlsafe_b64encode(VIEWER.encode()).decode().rstrip("=")
    async with serving(limited(settings)) as url:
        live = session.ws_connect(f"{url}/api/v1/live", protocols=(subprotocol,))
        async with live as ws:
            hello = await ws.receive_json(timeout=WAIT)

    assert hello["type"] == "hello"  # the token was read: the socket is the viewer's
    logged = caplog.text
    assert not [form for form in token_forms(VIEWER) if form in logged]

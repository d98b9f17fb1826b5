"""The API against what an attacker sends, on the real broker and database:
text no store can hold is a 422 that names the field; malformed input is a
4xx whose message travels in the body; what the OpenAPI document declares is
enforced; a client that hangs up is neither an ERROR log nor a 5xx."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config import KafkaNames, Settings
from tests.support.read_side import OPERATOR, bearer, prepare_schema, serving, with_tokens
from tests.support.system import SPEC

pytestmark = pytest.mark.integration
NUL = "\x00"


@pytest.fixture
async def client(settings: Settings, topics: KafkaNames) -> AsyncIterator[TestClient]:
    await prepare_schema(settings)
    app = create_app(with_tokens(settings))
    async with TestClient(TestServer(app), headers=bearer(OPERATOR)) as client:
        yield client


async def _problem(response: aiohttp.ClientResponse) -> tuple[int, dict[str, Any]]:
    return response.status, await response.json()


def _spec(**mapping: Any) -> dict[str, Any]:
    return {"spec": {**SPEC, "mapping": mapping}}


async def test_text_no_store_can_hold_is_a_422_naming_the_field(client: TestClient) -> None:
    cases = [
        ("/api/v1/migrations/m-1/pause", {"reason": "maint" + NUL}, "reason"),
        ("/api/v1/migrations/m-1/cancel", {"reason": "\udcff"}, "reason"),
        ("/api/v1/migrations/pause-all", {"reason": NUL}, "reason"),
        ("/api/v1/migrations", _spec(email={"default": NUL}), "spec.mapping.email.default"),
        ("/api/v1/migrations", _spec(c={"map": {"a": "b" + NUL}}), "spec.mapping.c.map.a"),
        (
            "/api/v1/migrations",
            _spec(c={"concat": ["a"], "separator": NUL}),
            "spec.mapping.c.separator",
        ),
    ]
    for path, body, field in cases:
        raw = json.dumps(body).encode()  # \u0000 and \udcff as JSON escapes
        status, answer = await _problem(await client.post(path, data=raw))
        assert (status, answer["detail"][0]["field"]) == (422, field), answer
    rules = {"spec": {**SPEC, "rules": [{"rule": "not_null", "column": "id", "name": NUL}]}}
    status, answer = await _problem(await client.post("/api/v1/migrations", json=rules))
    assert (status, answer["detail"][0]["field"]) == (422, "spec.rules[0].name")


async def test_deep_json_big_integers_and_odd_numbers_are_a_400(client: TestClient) -> None:
    deep = b'{"reason": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    cursor = "W" + "1s" * 3000  # base64 of "[[[[...": a cursor nested 1,000s deep
    for raw in (deep, b'{"reason": ' + b"1" * 5000 + b"}", b'{"reason": NaN}'):
        status, _ = await _problem(await client.post("/api/v1/migrations/pause-all", data=raw))
        assert status == 400
    status, answer = await _problem(
        await client.get("/api/v1/migrations", params={"cursor": cursor})
    )
    assert (status, answer["title"]) == (400, "cursor is not one this API gave out")


async def test_a_query_value_with_cr_lf_is_a_400_with_the_value_escaped(client: TestClient) -> None:
    status, answer = await _problem(
        await client.get("/api/v1/migrations", params={"status": "RUNNING\r\nX-Evil: 1"})
    )
    assert status == 400 and "'RUNNING\\r\\nX-Evil: 1'" in answer["title"]


async def test_headers_that_are_not_utf8_and_bad_idempotency_keys_are_a_400(
    client: TestClient,
) -> None:
    port = client.server.port
    assert port is not None
    raw = await asyncio.to_thread(
        _exchange,
        port,
        b"POST /api/v1/migrations/pause-all HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + OPERATOR.encode() + b"\r\n"
        b"Idempotency-Key: \xff\xfe\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 400"), raw[:200]
    for key in ("a" * 201, "with space", "é"):
        response = await client.post(
            "/api/v1/migrations/pause-all", json={}, headers={"Idempotency-Key": key}
        )
        status, answer = await _problem(response)
        assert status == 400 and "Idempotency-Key" in answer["title"], key


async def test_what_the_document_declares_is_enforced(client: TestClient) -> None:
    unknown = await client.get("/api/v1/migrations", params={"colour": "red"})
    assert unknown.status == 400 and "colour" in (await unknown.json())["title"]
    not_allowed = await client.delete("/api/v1/migrations")
    assert not_allowed.status == 405
    assert set(not_allowed.headers["Allow"].split(",")) == {"GET", "POST"}
    redrive = await client.post(
        "/api/v1/dead-letters/migration.commands/redrive", json={"all": True, "rate": 1e-320}
    )
    purge = await client.post(
        "/api/v1/dead-letters/migration.commands/purge", json={"before": ["0:" + "9" * 30]}
    )
    for refused in (redrive, purge):
        status, answer = await _problem(refused)
        assert status == 422 and "--" not in json.dumps(answer), answer


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _hang_up(port: int, request: bytes, wait_for_answer: bool) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sendall(request)
        if wait_for_answer:
            conn.recv(4096)


async def test_a_client_that_hangs_up_is_no_error_log_and_no_5xx(
    settings: Settings, topics: KafkaNames, caplog: pytest.LogCaptureFixture
) -> None:
    """Served as in production (aiohttp's test server cancels a handler whose
    client left; the real one lets it run into the closed connection)."""
    await prepare_schema(settings)
    port = settings.api.port
    auth = b"Authorization: Bearer " + OPERATOR.encode() + b"\r\n"
    mid_body = b"POST /api/v1/migrations HTTP/1.1\r\nHost: x\r\n" + auth
    mid_body += b'Content-Length: 5000\r\n\r\n{"spec": '
    socket_ = (
        b"GET /api/v1/live HTTP/1.1\r\nHost: x\r\n" + auth + b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: migrator.v1\r\n\r\n"
    )
    with caplog.at_level(logging.DEBUG):
        async with serving(with_tokens(settings)) as url:
            before = _server_errors(await _metrics(url))  # the registry outlives a test
            await asyncio.to_thread(_hang_up, port, mid_body, False)
            await asyncio.to_thread(_hang_up, port, socket_, True)
            metrics = await _metrics_after_both(url)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert _server_errors(metrics) == before, metrics
    assert 'route="/api/v1/migrations",status="499"' in metrics


def _server_errors(metrics: str) -> set[str]:
    """The request counter's lines of 5xx answers, with their counts."""
    return {
        line
        for line in metrics.splitlines()
        if "migrator_api_requests_total{" in line and re.search(r'status="5\d\d"', line)
    }


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        return await response.text()


async def _metrics_after_both(url: str) -> str:
    """/metrics once the hung-up request is counted (a bounded wait)."""
    async with asyncio.timeout(30), aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{url}/metrics") as response:
                text = await response.text()
            lines = [line for line in text.splitlines() if "migrator_api_requests_total{" in line]
            if any('route="/api/v1/migrations"' in line for line in lines) and any(
                'route="/api/v1/live"' in line for line in lines
            ):
                return "\n".join(lines)
            await asyncio.sleep(0.1)

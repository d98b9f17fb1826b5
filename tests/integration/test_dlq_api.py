"""The dead-letter routes of the API against the real broker and database:
viewers list and show, operators also redrive and purge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config import KafkaNames, Settings
from tests.support.dead_letters import records, write_dead_letters
from tests.support.read_side import OPERATOR, VIEWER, bearer, prepare_schema, with_tokens

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(settings: Settings, topics: KafkaNames) -> AsyncIterator[TestClient]:
    await prepare_schema(settings)
    app = create_app(with_tokens(settings))
    async with TestClient(TestServer(app), headers=bearer(OPERATOR)) as client:
        yield client


async def test_viewers_list_and_show_only_operators_redrive_and_purge(
    client: TestClient, settings: Settings, topics: KafkaNames
) -> None:
    write_dead_letters(settings, topics.dlq(topics.commands), topics.commands, [b"a"])
    base = f"/api/v1/dead-letters/{topics.commands}"
    viewer = bearer(VIEWER)

    listed = await client.get(base, headers=viewer)
    redrive = await client.post(f"{base}/redrive", json={"all": True}, headers=viewer)
    purge = await client.post(f"{base}/purge", json={"all": True}, headers=viewer)
    anonymous = await client.get(base, headers={"Authorization": ""})

    assert listed.status == 200
    assert (redrive.status, purge.status) == (403, 403)
    assert anonymous.status == 401


async def test_list_show_redrive_and_purge_over_http(
    client: TestClient, settings: Settings, topics: KafkaNames
) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"a", b"b"])
    base = f"/api/v1/dead-letters/{topics.commands}"

    listed = await (await client.get(base)).json()
    first = listed["dead_letters"][0]
    shown = await client.get(f"{base}/{first['partition']}/{first['offset']}")
    preview = await (
        await client.post(f"{base}/redrive", json={"all": True, "dry_run": True})
    ).json()
    redriven = await (await client.post(f"{base}/redrive", json={"all": True})).json()
    unconfirmed = await (await client.post(f"{base}/purge", json={"all": True})).json()
    purged = await (await client.post(f"{base}/purge", json={"all": True, "confirm": True})).json()

    assert len(listed["dead_letters"]) == 2 and shown.status == 200
    assert (await shown.json())["error_message"] == first["error_message"]
    assert (preview["to_redrive"], redriven["redriven"]) == (2, 2)
    assert sorted(r.value for r in records(settings, topics.commands)) == [b"a", b"b"]
    assert (unconfirmed["deleted"], purged["deleted"]) == (0, 2)
    assert records(settings, dlq) == []


async def test_bad_requests_get_a_4xx_that_says_why(client: TestClient, topics: KafkaNames) -> None:
    base = f"/api/v1/dead-letters/{topics.commands}"

    missing = await client.get(f"{base}/0/5")
    unknown = await client.get("/api/v1/dead-letters/nope")
    neither = await client.post(f"{base}/redrive", json={})
    malformed = await client.post(f"{base}/redrive", data=b"\xff{")

    assert missing.status == 404 and "holds no records" in (await missing.json())["title"]
    assert unknown.status == 404 and "does not exist" in (await unknown.json())["title"]
    assert neither.status == 422 and "all: true" in str((await neither.json())["detail"])
    assert malformed.status == 400 and "malformed JSON" in (await malformed.json())["title"]

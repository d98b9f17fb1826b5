"""A NUL character in a pause reason, through the real API, orchestrator
worker and projector. It never becomes an event: the API refuses it (422,
naming the field), and the same command written straight onto the commands
topic (as the console producer would) is dead-lettered by the worker with
the reason; the migration goes on and completes. An unstorable event that
is already in the log (written by an older version) still quarantines only
its migration, visibly in the API and counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from config import KafkaNames, Settings
from streams.kafka.clients import producer_config
from streams.kafka.dead_letter_headers import EXCEPTION_MESSAGE
from tests.support.dead_letters import records
from tests.support.event_log import paused_then_resumed, projecting, write_log
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.read_side import call, prepare_schema, serving, with_tokens
from tests.support.system import SPEC

pytestmark = pytest.mark.integration
NUL_REASON = "maint\x00enance"


async def poll(
    session: aiohttp.ClientSession, url: str, done: Callable[[Any], bool]
) -> dict[str, Any]:
    """GET `url` until `done(answer)`; fail with the last answer after a while."""
    last: dict[str, Any] = {}
    try:
        async with asyncio.timeout(120):
            while True:
                status, last = await call(session, "GET", url)
                if status == 200 and done(last):
                    return last
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"GET {url}: still {last}") from None


def produce_raw(settings: Settings, topic: str, key: str, command: dict[str, object]) -> None:
    """A JSON command as any client writes it, past the API."""
    producer = Producer(producer_config(settings))
    producer.produce(topic, json.dumps(command).encode(), key.encode())
    assert producer.flush(30) == 0


async def dead_letters(settings: Settings, topic: str, count: int) -> list[Any]:
    async with asyncio.timeout(60):
        while True:
            found = await asyncio.to_thread(records, settings, topic)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.5)


async def test_a_nul_in_a_pause_reason_is_refused_at_the_door_and_the_migration_goes_on(
    settings: Settings, topics: KafkaNames, tmp_path: Path
) -> None:
    # given: the system running, a migration started through the API
    settings = with_tokens(settings)
    await prepare_schema(settings)
    procs = Processes(settings, tmp_path)
    procs.start("worker")
    procs.start("simulator", extra_env={"SIMULATED_PHASE_SECONDS": "2"})
    try:
        kafka, group = settings.kafka.bootstrap_servers, settings.kafka.app_id
        await asyncio.to_thread(eventually, lambda: group_is_stable(kafka, group))
        async with (
            projecting(settings) as projector,
            serving(settings) as url,
            aiohttp.ClientSession() as session,
        ):
            api = f"{url}/api/v1/migrations"
            body = {"migration_id": "m-nul", "spec": SPEC}
            status, started = await call(session, "POST", f"{api}?wait=true", body=body)
            assert (status, started["outcome"]) == (200, "accepted"), started

            # when: an operator pauses it with a NUL in the reason, over HTTP
            # and as a raw command on the topic
            refused = await call(session, "POST", f"{api}/m-nul/pause", body={"reason": NUL_REASON})
            raw = {"type": "PauseMigration", "command_id": "c-raw", "migration_id": "m-nul"}
            await asyncio.to_thread(
                produce_raw, settings, topics.commands, "m-nul", {**raw, "reason": NUL_REASON}
            )

            # then: the HTTP one is a 422 naming the field, the raw one a dead
            # letter saying why, and the migration completes with no pause
            letters = await dead_letters(settings, topics.dlq(topics.commands), 1)
            done = await poll(session, f"{api}/m-nul", lambda m: m["status"] == "COMPLETED")
            assert not projector.done()

        assert refused[0] == 422, refused
        assert "reason" in json.dumps(refused[1]) and "NUL" in json.dumps(refused[1]), refused
        why = dict(letters[0].headers)[EXCEPTION_MESSAGE] or b""
        assert b"reason" in why and b"NUL" in why, why
        assert done["quarantine"] is None
        assert all(p["status"] == "COMPLETED" for p in done["phases"])
    finally:
        procs.stop_all()


async def test_an_unstorable_event_already_in_the_log_quarantines_only_its_migration(
    settings: Settings, topics: KafkaNames
) -> None:
    # given: a log (from an older version) where one migration's pause event
    # holds a NUL, beside a migration that is fine
    settings = with_tokens(settings)
    await prepare_schema(settings)
    before, after = paused_then_resumed("m-nul", NUL_REASON)
    fine, fine_after = paused_then_resumed("m-other", "maintenance")
    await asyncio.to_thread(write_log, settings, topics, [*before, *after, *fine, *fine_after])

    # when: the projector reads it, and the API is asked
    async with (
        projecting(settings) as projector,
        serving(settings) as url,
        aiohttp.ClientSession() as session,
    ):
        api = f"{url}/api/v1/migrations"
        held = await poll(session, f"{api}/m-nul", lambda m: m["quarantine"] is not None)
        other = await poll(session, f"{api}/m-other", lambda m: m["status"] == "COMPLETED")
        listed = await poll(session, f"{api}?quarantined=true", lambda page: True)
        assert not projector.done()

    # then: that one is quarantined at its pause event, visibly; the other is whole
    quarantine = held["quarantine"]
    assert quarantine["at_sequence"] == held["version"] + 1
    assert quarantine["reason"].startswith(f"unstorable event {quarantine['at_sequence']}: ")
    assert "\\u0000" in quarantine["reason"]  # PostgreSQL's words: NUL cannot be text
    assert held["status"] == "RUNNING"  # nothing of the pause applied
    assert other["quarantine"] is None
    assert [m["migration_id"] for m in listed["migrations"]] == ["m-nul"]
    assert REGISTRY.get_sample_value("migrator_projection_quarantined") == 1

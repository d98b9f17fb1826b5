"""A NUL character in a pause reason, through the real API, orchestrator
worker and projector: the API accepts it, the worker makes it an event,
PostgreSQL's jsonb refuses it, and the projector quarantines that one
migration (visible in the API, counted) while the others run to completion."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from config import KafkaNames, Settings
from tests.support.event_log import projecting
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.read_side import call, prepare_schema, serving, with_tokens
from tests.support.system import SPEC

pytestmark = pytest.mark.integration


async def poll(
    session: aiohttp.ClientSession, url: str, done: Callable[[dict[str, Any]], bool]
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


async def test_a_nul_in_a_pause_reason_quarantines_only_its_migration(
    settings: Settings, topics: KafkaNames, tmp_path: Path
) -> None:
    # given: the system running, two migrations started through the API
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
            for mid in ("m-nul", "m-other"):
                body = {"migration_id": mid, "spec": SPEC}
                status, started = await call(session, "POST", f"{api}?wait=true", body=body)
                assert (status, started["outcome"]) == (200, "accepted"), started

            # when: an operator pauses one with a NUL in the reason
            reason = {"reason": "maint\x00enance"}
            paused = await call(session, "POST", f"{api}/m-nul/pause", body=reason)

            # then: that one is quarantined at its pause event, the other completes
            held = await poll(session, f"{api}/m-nul", lambda m: m["quarantine"] is not None)
            other = await poll(session, f"{api}/m-other", lambda m: m["status"] == "COMPLETED")
            listed = await poll(session, f"{api}?quarantined=true", lambda page: True)
            assert not projector.done()

        assert paused[0] == 202  # the API accepted it
        quarantine = held["quarantine"]
        assert quarantine["at_sequence"] == held["version"] + 1
        assert quarantine["reason"].startswith(f"unstorable event {quarantine['at_sequence']}: ")
        assert "\\u0000" in quarantine["reason"]  # PostgreSQL's words: NUL cannot be text
        assert held["status"] == "RUNNING"  # nothing of the pause applied
        assert other["quarantine"] is None
        assert [m["migration_id"] for m in listed["migrations"]] == ["m-nul"]
        assert REGISTRY.get_sample_value("migrator_projection_quarantined") == 1
    finally:
        procs.stop_all()

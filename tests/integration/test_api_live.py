"""Live migrations through the API, against the real broker, orchestrator
worker, projector and database (the phase worker simulated: its sync runs
report a lag, its cutover runs catch up and succeed): a cdc migration shows
SYNCING with its lag, cuts over to COMPLETED with the cutover's result, an
abort returns it to SYNCING, a schema drift pauses it; the commands' 4xx."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest

from api.openapi import DOCUMENT
from config import Settings
from projections.projector import Projector
from tests.support.phase_simulator import FINAL, LAG_BYTES, LAG_SECONDS, POSITION
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.read_side import VIEWER, call, fresh_settings, prepare_schema, serving
from tests.support.stack import Stack
from tests.support.system import SPEC

pytestmark = pytest.mark.integration
LIVE = {**SPEC, "cdc": True}
MIGRATION = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/Migration", "components": DOCUMENT["components"]},
    validate_formats=True,
)
SLOTS = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/Slots", "components": DOCUMENT["components"]}
)


@dataclass
class System:
    settings: Settings
    url: str
    session: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        return await call(self.session, method, self.url + path, **kw)

    async def start(self, **spec: Any) -> str:
        mid = f"m-{uuid.uuid4().hex[:8]}"
        body = {"migration_id": mid, "spec": {**LIVE, **spec}}
        status, answer = await self.call("POST", "/api/v1/migrations?wait=true", body=body)
        assert (status, answer["outcome"]) == (200, "accepted"), answer
        return mid

    async def until(self, mid: str, *statuses: str) -> dict[str, Any]:
        """Long-poll the migration until it is in one of `statuses`."""
        path = f"/api/v1/migrations/{mid}"
        async with asyncio.timeout(90):
            status, row = await self.call("GET", path)
            while row["status"] not in statuses:
                assert status == 200, row
                poll = f"{path}?since_version={row['version']}&timeout=20"
                status, row = await self.call("GET", poll)
        return dict(row)

    async def command(self, mid: str, kind: str, body: object = None) -> tuple[int, Any]:
        path = f"/api/v1/migrations/{mid}/{kind}?wait=true"
        answer: tuple[int, Any] = await self.call("POST", path, body=body)
        return answer


@pytest.fixture(scope="module")
def module_settings(stack: Stack) -> Iterator[Settings]:
    with fresh_settings(stack) as settings:
        yield settings


@pytest.fixture(scope="module")
async def system(
    module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    settings = module_settings
    await prepare_schema(settings)
    procs = Processes(settings, Path(tmp_path_factory.mktemp("api-live")))
    procs.start("worker")
    procs.start("simulator", extra_env={"SIMULATED_PHASE_SECONDS": "0.5"})
    projector = Projector(settings)
    projecting = asyncio.create_task(projector.run())
    try:
        await asyncio.to_thread(
            eventually,
            lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id),
        )
        async with serving(settings) as url, aiohttp.ClientSession() as session:
            yield System(settings, url, session)
    finally:
        projector.stop()
        await projecting
        procs.stop_all()


async def test_a_cdc_migration_syncs_with_its_lag_then_cuts_over_to_completed(
    system: System,
) -> None:
    mid = await system.start()
    syncing = await system.until(mid, "SYNCING")
    assert syncing["lag_bytes"] is None or syncing["lag_bytes"] == LAG_BYTES
    syncing = await _with_lag(system, mid)

    status, asked = await system.command(
        mid, "cutover", {"max_lag_bytes": 4096, "max_lag_seconds": 2, "freeze": True}
    )
    done = await system.until(mid, "COMPLETED")

    assert (syncing["lag_bytes"], syncing["lag_seconds"], syncing["position"]) == (
        LAG_BYTES,
        LAG_SECONDS,
        POSITION,
    )
    assert "sync" in {p["phase"] for p in syncing["phases"]}
    assert (status, asked["outcome"]) == (200, "accepted")
    assert asked["migration"]["status"] in ("CUTTING_OVER", "COMPLETED")
    assert done["cutover"] == {"max_lag_bytes": 4096, "max_lag_seconds": 2.0, "freeze": True}
    assert done["cutover_result"]["position"] == FINAL
    assert done["cutover_result"]["frozen"] is True
    for row in (syncing, done):
        errors = [e.message for e in MIGRATION.iter_errors(row)]
        assert not errors, errors
    _, events = await system.call("GET", f"/api/v1/migrations/{mid}/events")
    types = [e["type"] for e in events["events"]]
    assert types[-3:] == ["PhaseCompleted", "CutoverCompleted", "MigrationCompleted"]
    assert "CutoverRequested" in types


async def test_an_aborted_cutover_syncs_again(system: System) -> None:
    mid = await system.start(source_table="held_items")  # its cutover never catches up
    await system.until(mid, "SYNCING")
    status, _ = await system.command(mid, "cutover", {})
    assert status == 200
    await system.until(mid, "CUTTING_OVER")

    status, aborted = await system.command(mid, "abort-cutover", {"reason": "load spike"})
    row = await system.until(mid, "SYNCING")

    assert (status, aborted["outcome"]) == (200, "accepted")
    by_phase = {p["phase"]: p for p in row["phases"]}
    assert (by_phase["cutover"]["status"], by_phase["cutover"]["reason"]) == (
        "CANCELLED",
        "aborted: load spike",
    )
    assert by_phase["sync"]["status"] == "RUNNING"


async def test_a_schema_drift_pauses_the_migration_and_resume_syncs(system: System) -> None:
    mid = await system.start(source_table="drift_items")

    paused = await system.until(mid, "PAUSED")
    status, _ = await system.command(mid, "resume")
    resumed = await system.until(mid, "SYNCING")

    assert paused["reason"] == "column note added to public.drift_items"
    assert status == 200
    assert resumed["reason"] is None


async def test_a_syncing_migration_pauses_and_resumes(system: System) -> None:
    mid = await system.start()
    await system.until(mid, "SYNCING")

    paused = await system.command(mid, "pause", {"reason": "night"})
    await system.until(mid, "PAUSED")
    resumed = await system.command(mid, "resume")

    assert (paused[0], resumed[0]) == (200, 200)
    assert (await system.until(mid, "SYNCING"))["phase"] == "sync"


async def test_cutover_and_abort_outside_their_states_are_rejected_saying_why(
    system: System,
) -> None:
    plain = await system.start(cdc=False, source_table="orders")
    live = await system.start()
    await system.until(live, "SYNCING")

    early = await system.command(plain, "cutover", {"max_lag_bytes": 0})
    abort = await system.command(live, "abort-cutover")

    assert early[0] == 409 and early[1]["outcome"] == "rejected"
    assert early[1]["detail"].startswith("only a SYNCING migration can cut over; it is ")
    assert abort[0] == 409
    assert abort[1]["detail"] == (
        "only a migration that is cutting over can abort its cutover; it is SYNCING"
    )


async def test_bad_cutover_requests_get_a_4xx_that_says_what_is_wrong(system: System) -> None:
    mid = await system.start()
    one = f"/api/v1/migrations/{mid}"
    cases: list[tuple[str, object, str | None, int, str]] = [
        (f"{one}/cutover", {"max_lag_bytes": -1}, None, 422, "invalid request body"),
        (f"{one}/cutover", {"max_lag_seconds": -0.5}, None, 422, "invalid request body"),
        (f"{one}/cutover", {"max_lag_bytes": "1k"}, None, 422, "invalid request body"),
        (f"{one}/cutover", {"freeze": "yes"}, None, 422, "invalid request body"),
        (f"{one}/cutover", {"lag": 1}, None, 422, "invalid request body"),
        (f"{one}/abort-cutover", {"why": "x"}, None, 422, "invalid request body"),
        ("/api/v1/migrations/m-none-such/cutover", {}, None, 404, "no migration"),
        ("/api/v1/migrations/m-none-such/abort-cutover", {}, None, 404, "no migration"),
        (f"{one}/cutover", {}, VIEWER, 403, "this needs the operator role"),
    ]
    for path, body, token, expected, title in cases:
        kwargs: dict[str, Any] = {"body": body} | ({"token": token} if token else {})
        status, answer = await system.call("POST", path, **kwargs)
        assert (status, title in answer["title"]) == (expected, True), (path, body, answer)


async def test_the_slots_route_answers_a_viewer_in_its_documented_shape(system: System) -> None:
    status, body = await system.call("GET", "/api/v1/slots", token=VIEWER)
    refused, _ = await system.call("GET", "/api/v1/slots", token=None)

    assert status == 200
    assert not [e.message for e in SLOTS.iter_errors(body)]
    assert body == {"slots": [], "unreachable": {}}  # this API is given no database
    assert refused == 401


async def test_the_long_poll_carries_a_migrations_lag(system: System) -> None:
    mid = await system.start()
    row = await _with_lag(system, mid)

    status, changes = await system.call(
        "GET", f"/api/v1/changes?since_version={row['feed_version'] - 1}&timeout=1"
    )

    (changed,) = [m for m in changes["migrations"] if m["migration_id"] == mid]
    assert status == 200
    assert (changed["status"], changed["lag_bytes"], changed["position"]) == (
        "SYNCING",
        LAG_BYTES,
        POSITION,
    )


async def _with_lag(system: System, mid: str) -> dict[str, Any]:
    """The migration once its sync's progress is in the read model."""
    async with asyncio.timeout(60):
        while True:
            _, row = await system.call("GET", f"/api/v1/migrations/{mid}")
            if row["lag_bytes"] is not None:
                return dict(row)
            await asyncio.sleep(0.1)

"""The API against the real broker, orchestrator worker, projector and
database: every route, every role, read-your-writes, live updates.

One system per module (a worker and a simulated phase worker as processes,
the projector and the API in this process); each test makes its own
migrations."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest

from api.openapi import DOCUMENT
from config import KafkaNames, Settings
from projections.projector import Projector
from tests.support.event_log import paced, write_log
from tests.support.phase_simulator import BYTES_PER_ROW, ROWS, SNAPSHOT
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.read_side import (
    AT,
    OPERATOR,
    VIEWER,
    bearer,
    call,
    fresh_settings,
    prepare_schema,
    serving,
)
from tests.support.stack import Stack, free_port
from tests.support.system import SPEC

pytestmark = pytest.mark.integration
PHASE_SECONDS = "2"
MIGRATION = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/Migration", "components": DOCUMENT["components"]},
    validate_formats=True,
)


@dataclass
class System:
    settings: Settings
    url: str
    session: aiohttp.ClientSession

    async def call(self, method: str, path: str, token: str | None = OPERATOR, **kw: Any) -> Any:
        return await call(self.session, method, self.url + path, token, **kw)

    async def start(self, spec: dict[str, Any] | None = None) -> str:
        """A new migration, visible in the read model; its id."""
        mid = f"m-{uuid.uuid4().hex[:8]}"
        body = {"migration_id": mid, "spec": spec or SPEC}
        status, answer = await self.call("POST", "/api/v1/migrations?wait=true", body=body)
        assert (status, answer["outcome"]) == (200, "accepted"), answer
        return mid

    async def until_version(self, mid: str, version: int) -> dict[str, Any]:
        """Poll the migration until the read model has it at `version`."""
        async with asyncio.timeout(90):
            while True:
                status, row = await self.call("GET", f"/api/v1/migrations/{mid}")
                if status == 200 and row["version"] >= version:
                    return dict(row)
                await asyncio.sleep(0.1)

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
    procs = Processes(settings, Path(tmp_path_factory.mktemp("api-system")))
    procs.start("worker")
    procs.start("simulator", extra_env={"SIMULATED_PHASE_SECONDS": PHASE_SECONDS})
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


# --- roles ------------------------------------------------------------------

COMMANDS = [
    ("POST", "/api/v1/migrations", {"spec": SPEC}),
    ("POST", "/api/v1/migrations/pause-all", {}),
    ("POST", "/api/v1/migrations/resume-all", {}),
    *(("POST", f"/api/v1/migrations/{{mid}}/{k}", {}) for k in ("pause", "resume", "cancel")),
    ("POST", "/api/v1/migrations/{mid}/retry", {}),
]
QUERIES = [
    "/api/v1/migrations",
    "/api/v1/migrations/{mid}",
    "/api/v1/migrations/{mid}/events",
    "/api/v1/changes?timeout=0.1",
]
OPEN = ["/health", "/ready", "/metrics", "/api/v1/openapi.json", "/dashboard", "/dashboard/app.js"]


async def test_without_a_valid_token_only_the_open_routes_answer(system: System) -> None:
    mid = await system.start()
    for path in QUERIES:
        for token in (None, "not-a-token-of-ours-at-all"):
            status, body = await system.call("GET", path.format(mid=mid), token)
            assert (status, body["title"]) == (401, "a valid bearer token is required"), path
    for method, path, body in COMMANDS:
        status, _ = await system.call(method, path.format(mid=mid), None, body=body)
        assert status == 401, path
    for path in OPEN:
        status, _ = await system.call("GET", path, None)
        assert status == 200, path
    assert await system.call("GET", "/api/v1/whoami", None) == (200, {"role": None})
    bad = await system.call("GET", "/api/v1/whoami", "not-a-token-of-ours-at-all")
    assert bad[0] == 401


async def test_a_viewer_queries_and_may_not_command(system: System) -> None:
    mid = await system.start()
    for path in QUERIES:
        status, _ = await system.call("GET", path.format(mid=mid), VIEWER)
        assert status == 200, path
    for method, path, body in COMMANDS:
        status, answer = await system.call(method, path.format(mid=mid), VIEWER, body=body)
        assert (status, answer["title"]) == (403, "this needs the operator role"), path
    assert (await system.call("GET", "/api/v1/whoami", VIEWER))[1] == {"role": "viewer"}


async def test_a_websocket_without_a_token_is_refused(system: System) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await system.session.ws_connect(f"{system.url}/api/v1/live")
    assert refused.value.status == 401


# --- commands and read-your-writes -------------------------------------------


async def test_a_created_migration_is_in_the_answer_when_waiting(system: System) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    url = "/api/v1/migrations?wait=true"

    status, first = await system.call("POST", url, body={"spec": SPEC}, headers=key)
    again_status, again = await system.call("POST", url, body={"spec": SPEC}, headers=key)

    assert (status, first["outcome"], first["migration"]["status"]) == (200, "accepted", "RUNNING")
    assert first["migration"]["version"] >= first["version"] >= 2
    assert (again_status, again["command_id"]) == (200, first["command_id"])
    _, events = await system.call("GET", f"/api/v1/migrations/{first['migration_id']}/events")
    started = [e for e in events["events"] if e["type"] == "MigrationStarted"]
    assert len(started) == 1  # the repeated request had no second effect


async def test_without_waiting_a_command_is_accepted_with_its_position(system: System) -> None:
    status, answer = await system.call("POST", "/api/v1/migrations", body={"spec": SPEC})

    assert status == 202
    assert set(answer) == {"migration_id", "command_id", "position"}
    assert answer["position"]["offset"] >= 0


async def test_pause_resume_cancel_and_their_rejections(system: System) -> None:
    mid = await system.start()
    one = f"/api/v1/migrations/{mid}"

    status, paused = await system.call("POST", f"{one}/pause?wait=true", body={"reason": "lunch"})
    assert (status, paused["outcome"]) == (200, "accepted")
    assert paused["migration"]["status"] in ("PAUSING", "PAUSED")
    assert (await system.until(mid, "PAUSED"))["reason"] == "lunch"

    status, again = await system.call("POST", f"{one}/pause?wait=true")
    assert (status, again["outcome"]) == (409, "rejected")
    assert "RUNNING" in again["detail"]

    status, resumed = await system.call("POST", f"{one}/resume?wait=true")
    assert (status, resumed["migration"]["status"]) == (200, "RUNNING")

    status, cancelled = await system.call("POST", f"{one}/cancel?wait=true", body={})
    assert (status, cancelled["migration"]["status"]) == (200, "CANCELLED")
    status, retried = await system.call("POST", f"{one}/retry?wait=true")
    assert (status, retried["outcome"]) == (409, "rejected")


async def test_a_failed_migration_is_retried(system: System) -> None:
    mid = await system.start({**SPEC, "source_table": "flaky_orders"})
    failed = await system.until(mid, "FAILED")
    assert failed["phase"] == "transform"

    status, retried = await system.call("POST", f"/api/v1/migrations/{mid}/retry?wait=true")

    assert (status, retried["outcome"]) == (200, "accepted")
    assert retried["migration"]["version"] > failed["version"]


async def test_pause_all_and_resume_all_command_each_matching_migration(system: System) -> None:
    mids = {await system.start() for _ in range(3)}

    status, paused = await system.call("POST", "/api/v1/migrations/pause-all?wait=true&timeout=30")
    assert status == 200, paused
    assert mids <= {c["migration_id"] for c in paused["commands"]}
    assert paused["count"] == len(paused["commands"]) == paused["accepted"] + paused["rejected"]
    for mid in mids:
        await system.until(mid, "PAUSED", "COMPLETED")

    status, resumed = await system.call("POST", "/api/v1/migrations/resume-all")
    assert status == 202
    _, page = await system.call("GET", "/api/v1/migrations?status=PAUSED&limit=500")
    paused_now = {m["migration_id"] for m in page["migrations"]}
    assert paused_now <= {c["migration_id"] for c in resumed["commands"]}
    assert resumed["count"] == len(resumed["commands"])


# --- queries ------------------------------------------------------------------


async def test_the_list_pages_through_every_migration_once_in_a_stable_order(
    system: System,
) -> None:
    for _ in range(3):
        await system.start()
    _, everything = await system.call("GET", "/api/v1/migrations?limit=500")
    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await system.call("GET", f"/api/v1/migrations?limit=2{cursor}")
        assert status == 200
        seen += [m["migration_id"] for m in page["migrations"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"

    listed = [m["migration_id"] for m in everything["migrations"]]
    assert seen == listed  # no row twice, none skipped, in the same order
    keys = [(m["created_at"], m["migration_id"]) for m in everything["migrations"]]
    assert keys == sorted(keys, reverse=True)


async def test_the_list_filters_by_status(system: System) -> None:
    mid = await system.start()
    await system.call("POST", f"/api/v1/migrations/{mid}/cancel?wait=true")

    _, cancelled = await system.call("GET", "/api/v1/migrations?status=CANCELLED")
    _, others = await system.call("GET", "/api/v1/migrations?status=RUNNING,COMPLETED")

    assert mid in {m["migration_id"] for m in cancelled["migrations"]}
    assert {m["status"] for m in cancelled["migrations"]} == {"CANCELLED"}
    assert mid not in {m["migration_id"] for m in others["migrations"]}


async def test_one_migration_shows_progress_phases_and_its_history(system: System) -> None:
    mid = await system.start()
    done = await system.until(mid, "COMPLETED")

    _, history = await system.call("GET", f"/api/v1/migrations/{mid}/events")
    _, tail = await system.call("GET", f"/api/v1/migrations/{mid}/events?after=3&limit=2")

    assert (done["rows_done"], done["score"], done["phase"]) == (100, 1.0, "reconcile")
    assert [p["phase"] for p in done["phases"]] == [
        "extract",
        "transform",
        "validate",
        "load",
        "reconcile",
    ]
    assert {p["status"] for p in done["phases"]} == {"COMPLETED"}
    assert done["finished_at"] is not None
    sequences = [e["sequence"] for e in history["events"]]
    assert sequences == list(range(1, done["version"] + 1))
    assert [e["sequence"] for e in tail["events"]] == [4, 5]
    # bytes over every phase; extract's snapshot; a done phase has nothing left to go
    assert {p["bytes_done"] for p in done["phases"]} == {ROWS * BYTES_PER_ROW}
    assert done["bytes_done"] == 5 * ROWS * BYTES_PER_ROW
    assert done["snapshot"] == done["phases"][0]["snapshot"] == asdict(SNAPSHOT)
    assert [p["snapshot"] for p in done["phases"][1:]] == [None] * 4
    assert (done["eta_seconds"], {p["eta_seconds"] for p in done["phases"]}) == (0, {0})
    assert MIGRATION.is_valid(done), list(MIGRATION.iter_errors(done))


async def test_a_running_migration_shows_its_bytes_snapshot_rates_and_eta(
    system: System,
) -> None:
    mid = f"m-{uuid.uuid4().hex[:8]}"
    history = paced(mid)  # 10 s into extract: 50 of 100 rows, 5,000 bytes
    names = KafkaNames(
        app_id=system.settings.kafka.app_id, prefix=system.settings.kafka.topic_prefix
    )
    await asyncio.to_thread(write_log, system.settings, names, history)

    row = await system.until_version(mid, len(history))
    async with system.session.ws_connect(
        f"{system.url}/api/v1/migrations/{mid}/live", headers=bearer(VIEWER)
    ) as ws:
        await ws.receive_json(timeout=30)
        pushed = (await ws.receive_json(timeout=30))["migration"]

    (extract,) = row["phases"]
    assert MIGRATION.is_valid(row), list(MIGRATION.iter_errors(row))
    for shown in (row, extract, pushed):
        assert (shown["rows_done"], shown["rows_total"], shown["bytes_done"]) == (50, 100, 5000)
        assert (shown["rows_per_second"], shown["bytes_per_second"]) == (5.0, 500.0)
        assert shown["eta_seconds"] == 10.0
        assert datetime.fromisoformat(shown["eta_at"]) == datetime.fromisoformat(AT) + timedelta(
            seconds=20
        )
        assert shown["snapshot"] == asdict(SNAPSHOT)
    assert datetime.fromisoformat(extract["run_started_at"]) == datetime.fromisoformat(AT)


# --- live ---------------------------------------------------------------------


async def test_a_migration_socket_pushes_each_change_and_resumes_from_its_cursor(
    system: System,
) -> None:
    mid = await system.start()
    socket_url = f"{system.url}/api/v1/migrations/{mid}/live"
    async with system.session.ws_connect(socket_url, headers=bearer(VIEWER)) as ws:
        hello = await ws.receive_json(timeout=30)
        first = await ws.receive_json(timeout=30)
        await system.call("POST", f"/api/v1/migrations/{mid}/pause")
        pushed = [first]
        while pushed[-1]["migration"]["status"] != "PAUSED":
            pushed.append(await ws.receive_json(timeout=60))

    assert hello == {"type": "hello", "since_version": 0}
    events = [e["sequence"] for message in pushed for e in message["events"]]
    assert events == list(range(1, pushed[-1]["migration"]["version"] + 1))
    cursor = first["migration"]["version"]
    async with system.session.ws_connect(
        f"{socket_url}?since_version={cursor}", protocols=("migrator.v1", _subprotocol(VIEWER))
    ) as ws:
        assert ws.protocol == "migrator.v1"
        await ws.receive_json(timeout=30)
        resumed = await ws.receive_json(timeout=30)
    assert resumed["events"][0]["sequence"] == cursor + 1


def _subprotocol(token: str) -> str:
    return "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


async def test_the_all_socket_pushes_new_migrations(system: System) -> None:
    async with system.session.ws_connect(f"{system.url}/api/v1/live", headers=bearer(VIEWER)) as ws:
        await ws.receive_json(timeout=30)
        mid = await system.start()
        seen: set[str] = set()
        while mid not in seen:
            message = await ws.receive_json(timeout=60)
            assert message["type"] == "changes"
            seen |= {m["migration_id"] for m in message["migrations"]}


async def test_the_long_poll_answers_when_something_newer_is_there(system: System) -> None:
    mid = await system.start()
    _, now = await system.call("GET", f"/api/v1/migrations/{mid}")
    _, feed = await system.call("GET", "/api/v1/migrations?limit=1")

    one = asyncio.create_task(
        system.call("GET", f"/api/v1/migrations/{mid}?since_version={now['version']}&timeout=60")
    )
    changes = asyncio.create_task(
        system.call("GET", f"/api/v1/changes?since_version={feed['feed_version']}&timeout=60")
    )
    await system.call("POST", f"/api/v1/migrations/{mid}/cancel")

    (_, newer), (_, changed) = await one, await changes
    assert newer["version"] > now["version"]
    assert changed["feed_version"] > feed["feed_version"] and changed["migrations"]


async def test_a_long_poll_with_nothing_newer_answers_with_what_there_is(system: System) -> None:
    mid = await system.start()
    status, row = await system.call(
        "GET", f"/api/v1/migrations/{mid}?since_version=999&timeout=0.2"
    )
    assert (status, row["migration_id"]) == (200, mid)


# --- bad input ------------------------------------------------------------------


async def test_bad_input_gets_a_4xx_that_says_what_is_wrong(system: System) -> None:
    mid = await system.start()
    url = "/api/v1/migrations"
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", url, {"data": "{not json"}, 400, "malformed JSON"),
        ("POST", url, {"data": b"\xff\xfe\xfd"}, 400, "malformed JSON"),
        ("POST", url, {"body": {"spec": SPEC, "extra": 1}}, 422, "invalid request body"),
        ("POST", url, {"body": {"spec": {**SPEC, "batch_size": 0}}}, 422, "invalid request body"),
        ("POST", url, {"data": "x" * 300_000}, 413, "request body too large"),
        ("POST", f"{url}?timeout=99", {"body": {"spec": SPEC}}, 400, "timeout must be"),
        ("POST", f"{url}?wait=maybe", {"body": {"spec": SPEC}}, 400, "wait must be"),
        ("GET", f"{url}/m-none-such", {}, 404, "no migration 'm-none-such'"),
        ("GET", f"{url}/m-none-such/events", {}, 404, "no migration"),
        ("POST", f"{url}/m-none-such/pause", {}, 404, "no migration"),
        ("POST", f"{url}/{mid}/pause", {"body": {"why": "x"}}, 422, "invalid request body"),
        ("POST", f"{url}/{mid}/resume", {"body": {"reason": "x"}}, 422, "invalid request body"),
        ("GET", f"{url}?cursor=bm9wZQ", {}, 400, "cursor is not one"),
        ("GET", f"{url}?limit=0", {}, 400, "limit must be"),
        ("GET", f"{url}?status=LOST", {}, 400, "status must be among"),
        ("GET", f"{url}/{mid}?since_version=-1", {}, 400, "since_version must be"),
        ("GET", f"{url}/m%00x", {}, 400, "a value the database cannot take"),
        ("GET", f"{url}/{mid}/live", {}, 426, "WebSocket only"),
    ]
    for method, path, kwargs, expected, title in cases:
        status, body = await system.call(method, path, **kwargs)
        assert (status, title in body["title"]) == (expected, True), (path, kwargs, body)


async def test_an_invalid_mapping_or_rule_is_refused_with_the_data_planes_message(
    system: System,
) -> None:
    spec = {**SPEC, "rules": [{"rule": "range", "column": "age"}]}

    status, body = await system.call("POST", "/api/v1/migrations", body={"spec": spec})

    assert status == 422
    assert any("range needs min or max" in d["error"] for d in body["detail"])


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"on_existing": "overwrite"}, "spec.on_existing", "on_existing must be one of"),
        ({"on_existing": 1}, "spec.on_existing", "valid string"),
        ({"mode": "fast"}, "spec.mode", "mode must be one of ['full', 'copy-only'], not 'fast'"),
        (
            {"mode": "copy-only", "mapping": {"full_name": "name"}},
            "spec",
            "mapping must be empty when mode is 'copy-only'",
        ),
        (
            {"mode": "copy-only", "rules": [{"rule": "not_null", "column": "email"}]},
            "spec",
            "rules must be empty when mode is 'copy-only'",
        ),
    ],
)
async def test_a_wrong_option_is_refused_at_submit_naming_it(
    system: System, options: dict[str, Any], field: str, words: str
) -> None:
    body = {"spec": {**SPEC, **options}}

    status, answer = await system.call("POST", "/api/v1/migrations", body=body)

    assert (status, answer["title"]) == (422, "invalid request body"), answer
    assert any(d["field"] == field and words in d["error"] for d in answer["detail"]), answer


async def test_a_specs_options_reach_the_read_model(system: System) -> None:
    spec = {**SPEC, "on_existing": "replace", "mode": "copy-only"}

    mid = await system.start(spec)

    _, row = await system.call("GET", f"/api/v1/migrations/{mid}")
    assert (row["spec"]["on_existing"], row["spec"]["mode"]) == ("replace", "copy-only")
    _, defaults = await system.call("GET", f"/api/v1/migrations/{await system.start()}")
    assert (defaults["spec"]["on_existing"], defaults["spec"]["mode"]) == ("upsert", "full")


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"^(a*)*\1$", "back references ('\\\\1') are not allowed"),
        (r"^(?=.*@)", "lookaround constraints ('(?=') are not allowed"),
        ("a" * 257, "characters long; at most 256"),
    ],
)
async def test_a_pattern_postgresql_may_not_run_in_linear_time_is_refused_at_submit(
    system: System, pattern: str, words: str
) -> None:
    rule = {"rule": "pattern", "column": "email", "pattern": pattern, "name": "email shape"}
    spec = {**SPEC, "rules": [rule]}

    status, body = await system.call("POST", "/api/v1/migrations", body={"spec": spec})

    assert status == 422, body
    errors = [d["error"] for d in body["detail"]]
    assert any(
        "rules[0].pattern" in e and "(rule 'email shape')" in e and words in e for e in errors
    ), errors


# --- operations ---------------------------------------------------------------------


async def test_ready_checks_kafka_and_the_database(system: System) -> None:
    status, body = await system.call("GET", "/ready", None)
    assert (status, body["checks"]) == (200, {"database": "ok", "kafka": "ok"})

    broken = system.settings.replace(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"},
        api={"port": free_port(), "database_url": None, "database_user": "no_such_role"},
    )
    async with serving(broken) as url:
        status, body = await call(system.session, "GET", f"{url}/ready", None)
    assert status == 503
    assert body["checks"]["kafka"].startswith("unavailable")
    assert body["checks"]["database"].startswith("unavailable")


async def test_metrics_count_requests_by_route_and_status(system: System) -> None:
    await system.call("GET", "/api/v1/migrations/m-nothing")

    status, text = await system.call("GET", "/metrics", None)

    assert status == 200
    assert (
        'migrator_api_requests_total{method="GET",route="/api/v1/migrations/{migration_id}",'
        'status="404"}' in text
    )
    assert "migrator_api_request_seconds_bucket" in text


async def test_a_client_over_its_rate_gets_429_with_retry_after(system: System) -> None:
    limited = system.settings.replace(
        api={"rate_per_second": 0.01, "rate_burst": 2, "port": free_port()}
    )
    async with serving(limited) as url:
        answers = [await call(system.session, "GET", f"{url}/api/v1/whoami") for _ in range(3)]
        async with system.session.get(f"{url}/api/v1/whoami", headers=bearer(OPERATOR)) as resp:
            retry_after = resp.headers.get("Retry-After")
        other = await call(system.session, "GET", f"{url}/api/v1/whoami", VIEWER)
        health = await call(system.session, "GET", f"{url}/health", None)

    assert [s for s, _ in answers] == [200, 200, 429]
    assert retry_after is not None and int(retry_after) >= 1
    assert other[0] == 200 and health[0] == 200  # another client; an open probe

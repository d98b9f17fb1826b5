"""One migration's whole trace, read back from a real trace backend (Jaeger):
submitted with the CLI (through the API), it passes through every process — the API, the
orchestrator, the phase worker, the projector — in order, phase by phase,
chunk by chunk. A command from the console producer (no trace context)
starts its trace at the orchestrator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config import KafkaNames, Settings
from config.connections import Connection
from ops.traces import Span
from tests.support.data_plane import connections_env
from tests.support.jaeger import BUILD_SECONDS, Jaeger, Unavailable, running_jaeger
from tests.support.processes import Processes, eventually, group_is_stable, http
from tests.support.stack import Stack
from tests.support.system import API_ENV, OPERATOR_TOKEN, SPEC, migration, send_commands
from tests.support.tables import connection_for, create_customers, fresh_database

# The first test may build Jaeger first (scripts/install-jaeger: minutes, once).
pytestmark = [pytest.mark.e2e, pytest.mark.traces, pytest.mark.timeout(BUILD_SECONDS + 300)]

API, ORCHESTRATOR = "migrator-api", "migrator-orchestrator"
PHASE_WORKER, PROJECTOR = "migrator-phase-worker", "migrator-projector"
PHASES = ["extract", "transform", "validate", "load", "reconcile"]


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    try:
        with running_jaeger(tmp_path_factory.mktemp("jaeger")) as backend:
            yield backend
    except Unavailable as exc:
        pytest.skip(f"no trace backend: {exc}")


@pytest.fixture
def connections(stack: Stack, unique: str) -> Iterator[dict[str, Connection]]:
    with (
        fresh_database(stack.database_url, f"src_{unique}") as source,
        fresh_database(stack.database_url, f"tgt_{unique}") as target,
    ):
        create_customers(source, 3000)
        yield {"legacy": connection_for(source), "warehouse": connection_for(target)}


@contextmanager
def traced_system(
    settings: Settings, names: KafkaNames, logs: Path, env: dict[str, str]
) -> Iterator[Processes]:
    """Orchestrator, phase worker, projector and API, each exporting its spans;
    all must exit 0 on SIGTERM (which flushes their last spans)."""
    procs = Processes(settings, logs)
    try:
        procs.start("worker", extra_env=env)
        procs.start("phase-0", "phase-worker", {**env, "PHASE_WORKER_ID": "phase-0"})
        procs.start("projector", extra_env=env)
        procs.start("api", extra_env={**env, **API_ENV})
        eventually(lambda: http("GET", f"http://127.0.0.1:{settings.api.port}/ready")[0] == 200)
        groups = (settings.kafka.app_id, names.phase_worker_group, names.projector_group)
        for group in groups:
            eventually(lambda g=group: group_is_stable(settings.kafka.bootstrap_servers, g), 180)
        yield procs
    except BaseException:
        procs.stop_all()
        raise
    codes = procs.stop_all()
    assert set(codes.values()) == {0}, {n: procs.log(n)[-3000:] for n in codes}


def migrator(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, with the operator's token."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**os.environ, "API_TOKEN": OPERATOR_TOKEN, "MIGRATOR_API_URL": api_root(settings)},
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip


def api_root(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.api.port}"


def chain(spans: list[Span], last: Span) -> list[Span]:
    """`last` and its ancestors, from the trace's root down."""
    by_id = {s.id: s for s in spans}
    out = [last]
    while out[-1].parent is not None:
        out.append(by_id[out[-1].parent])
    return out[::-1]


def collapsed(services: list[str]) -> list[str]:
    """Consecutive repeats as one: the processes a path went through, in order."""
    return [s for i, s in enumerate(services) if i == 0 or services[i - 1] != s]


def first_seen(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def whole(spans: list[Span]) -> bool:
    """The trace holds the migration's end: the projector's commit of an event
    of the reconcile phase's result."""
    return any(
        s.name == "projector commit" and "phase reconcile" in [a.name for a in chain(spans, s)]
        for s in spans
    )


def test_a_migration_is_one_trace_through_every_process_in_order(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    jaeger: Jaeger,
    connections: dict[str, Connection],
) -> None:
    env = {"TRACES_ENDPOINT": jaeger.otlp, **connections_env(connections)}
    with traced_system(settings, topics, tmp_path, env):
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({**SPEC, "batch_size": 500}))
        submitted = migrator(settings, "submit", str(spec), "--migration-id", "m-traced")
        assert json.loads(submitted.stdout)["outcome"] == "accepted"
        trace_id = submitted.stderr.split("trace: migrator trace ", 1)[1].split()[0]
        done = eventually(lambda: migration(settings, "m-traced").get("status") == "COMPLETED")
        assert done

    spans = eventually(lambda: (found := jaeger.trace(trace_id)) and whole(found) and found, 60)

    # Every process appears, and the trace starts at the API's request.
    assert {s.service for s in spans} == {API, ORCHESTRATOR, PHASE_WORKER, PROJECTOR}
    (root,) = [s for s in spans if s.parent is None]
    assert (root.service, root.name) == (API, "api POST /api/v1/migrations")
    # The migration's end descends from the request through every process, in order.
    completed = max((s for s in spans if s.name == "projector commit"), key=lambda s: s.start)
    path = chain(spans, completed)
    assert collapsed([s.service for s in path]) == [
        API,
        *[ORCHESTRATOR, PHASE_WORKER] * len(PHASES),
        ORCHESTRATOR,
        PROJECTOR,
    ], [(s.service, s.name) for s in path]
    assert [s.name for s in path if s.name.startswith("phase ")] == [f"phase {p}" for p in PHASES]
    assert [s.start for s in path] == sorted(s.start for s in path)
    # One span per phase, in order; one per chunk of extract, inside its phase.
    phases = sorted((s for s in spans if s.name.startswith("phase ")), key=lambda s: s.start)
    assert first_seen([s.name for s in phases]) == [f"phase {p}" for p in PHASES]
    chunks = [s for s in spans if s.name == "extract chunk" and "chunk" in s.tags]
    assert len(chunks) >= 2
    assert all("phase extract" in [a.name for a in chain(spans, c)] for c in chunks)
    assert sum(int(c.tags["rows"]) for c in chunks) >= 3000
    # The API answered after the projector committed the command's events.
    (waited,) = [s for s in spans if s.name == "api wait for the read model"]
    commits = [s for s in spans if s.name == "projector commit" and root in chain(spans, s)]
    first_commit = min(commits, key=lambda s: s.start)
    assert collapsed([s.service for s in chain(spans, first_commit)]) == [
        API,
        ORCHESTRATOR,
        PROJECTOR,
    ]
    assert root.start <= first_commit.start <= waited.end <= root.end
    # The operator's view of it: the CLI draws the same trace as a tree.
    shown = migrator(settings, "trace", trace_id, "--backend", jaeger.ui).stdout
    assert all(f"{service} " in shown for service in (API, ORCHESTRATOR, PHASE_WORKER, PROJECTOR))
    assert f"{len(spans)} spans" in shown


def test_a_command_without_a_trace_context_starts_its_trace_at_the_orchestrator(
    settings: Settings,
    topics: KafkaNames,
    stack: Stack,
    tmp_path: Path,
    jaeger: Jaeger,
    connections: dict[str, Connection],
) -> None:
    command = {"type": "StartMigration", "command_id": "c-untraced", "migration_id": "m-untraced"}
    env = {"TRACES_ENDPOINT": jaeger.otlp, **connections_env(connections)}
    with traced_system(settings, topics, tmp_path, env):
        send_commands(stack, topics, {**command, "spec": SPEC})
        eventually(lambda: migration(settings, "m-untraced"))

    def traced() -> list[Span] | None:
        found = jaeger.traces(ORCHESTRATOR, {"migration.id": "m-untraced"})
        return next((t for t in found if any(s.service == PROJECTOR for s in t)), None)

    spans = eventually(traced, 60)
    (root,) = [s for s in spans if s.parent is None]
    assert root.service == ORCHESTRATOR
    assert root.tags["input"] == "StartMigration"
    commit = min((s for s in spans if s.name == "projector commit"), key=lambda s: s.start)
    assert collapsed([s.service for s in chain(spans, commit)]) == [ORCHESTRATOR, PROJECTOR]

"""The proof of row-level diff and repair through the running processes
(orchestrator worker, phase worker, projector, API; real Kafka, real
PostgreSQL): a migrated table's target is corrupted behind the migration's
back; `migrator diff --take` finds exactly those keys; `migrator repair`
fixes them; the second diff is clean and the target equals the source."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from config import KafkaNames, Settings
from config.connections import Connection
from tests.support.data_plane import connections_env
from tests.support.processes import (
    ROOT,
    Processes,
    eventually,
    group_is_stable,
    process_env,
)
from tests.support.stack import Stack
from tests.support.system import (
    OPERATOR_TOKEN,
    SPEC,
    api_http,
    api_url,
    migration,
    running_system,
    send_commands,
)
from tests.support.tables import connection_for, create_customers, fresh_database

pytestmark = pytest.mark.e2e
ROWS = 30_000
MID = "m-diff"


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        create_customers(url, ROWS)
        yield url


@pytest.fixture
def target_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"tgt_{unique}") as url:
        yield url


@pytest.fixture
def system(
    settings: Settings, topics: KafkaNames, tmp_path: Path, source_url: str, target_url: str
) -> Iterator[Processes]:
    connections: dict[str, Connection] = {
        "legacy": connection_for(source_url),
        "warehouse": connection_for(target_url),
    }
    with running_system(settings, topics, tmp_path) as procs:
        procs.start("phase-0", "phase-worker", connections_env(connections))
        eventually(
            lambda: group_is_stable(settings.kafka.bootstrap_servers, topics.phase_worker_group)
        )
        yield procs


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **process_env(settings),
        "API_TOKEN": OPERATOR_TOKEN,
        "MIGRATOR_API_URL": f"http://127.0.0.1:{settings.api.port}",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def digest(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), sum(hash_record_extended(c.*, 0))::text FROM customers AS c"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def diff_report(settings: Settings) -> tuple[int, Any]:
    return api_http("GET", f"{api_url(settings)}/migrations/{MID}/diff")


def test_diff_finds_exactly_the_corrupted_keys_repair_fixes_them_a_second_diff_is_clean(
    settings: Settings,
    topics: KafkaNames,
    stack: Stack,
    system: Processes,
    source_url: str,
    target_url: str,
) -> None:
    start = {"type": "StartMigration", "command_id": "c-1", "migration_id": MID, "spec": SPEC}
    send_commands(stack, topics, start)
    eventually(lambda: migration(settings, MID).get("status") == "COMPLETED", timeout=180)
    status, first = eventually(lambda: (r := diff_report(settings))[0] == 200 and r)
    assert first["clean"] and first["phase"] == "reconcile" and first["source_rows"] == ROWS
    status, refused = api_http(
        "POST", f"{api_url(settings)}/migrations/{MID}/repair?wait=true&timeout=30", {}
    )
    assert status == 409 and "nothing to repair" in refused["detail"]

    with psycopg.connect(target_url, autocommit=True) as conn:  # behind the migration's back
        conn.execute("UPDATE customers SET email = 'x@y.z' WHERE id IN (5, 29000)")
        conn.execute("DELETE FROM customers WHERE id IN (123, 20001)")
        conn.execute("INSERT INTO customers (id, name) VALUES (40000, 'extra')")
    taken = cli(settings, "diff", MID, "--take", "--json")

    assert taken.returncode == 3, taken.stderr
    found = json.loads(taken.stdout)
    assert (found["missing"], found["extra"], found["different"]) == (2, 1, 2)
    assert found["samples"] == {
        "missing": ["123", "20001"],
        "extra": ["40000"],
        "different": ["5", "29000"],
    }
    assert found["phase"] == "diff" and found["snapshot"]["lsn"] and found["taken_at"]
    assert migration(settings, MID)["status"] == "FAILED"

    repaired = cli(settings, "repair", MID, "--json")

    assert repaired.returncode == 0, repaired.stderr
    second = json.loads(repaired.stdout)
    assert second["clean"] and second["phase"] == "repair"
    assert (second["missing"], second["extra"], second["different"]) == (0, 0, 0)
    assert migration(settings, MID)["status"] == "COMPLETED"
    assert digest(target_url) == digest(source_url)
    _, history = api_http("GET", f"{api_url(settings)}/migrations/{MID}/events")
    recorded = [e["payload"]["differing"] for e in history["events"] if e["type"] == "DiffRecorded"]
    assert recorded == [0, 5, 0]  # reconcile, the diff, the repair's second diff


def test_a_repair_through_the_console_producer_with_nothing_to_repair_is_rejected(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    start = {"type": "StartMigration", "command_id": "c-1", "migration_id": MID, "spec": SPEC}
    send_commands(stack, topics, start)
    eventually(lambda: migration(settings, MID).get("status") == "COMPLETED", timeout=180)

    send_commands(
        stack, topics, {"type": "RepairMigration", "command_id": "c-2", "migration_id": MID}
    )

    def rejection() -> dict[str, Any] | None:
        _, history = api_http("GET", f"{api_url(settings)}/migrations/{MID}/events")
        found = [e for e in history["events"] if e["type"] == "CommandRejected"]
        return found[0] if found else None

    rejected = eventually(rejection)
    assert rejected["payload"]["command_type"] == "RepairMigration"
    assert (
        "nothing to repair: the last diff found no differing keys"
        in (rejected["payload"]["reason"])
    )
    url = f"http://127.0.0.1:{settings.api.port}/dashboard/diff?id={MID}"
    with urllib.request.urlopen(url, timeout=30) as page:
        assert page.status == 200 and b"Diff report" in page.read()

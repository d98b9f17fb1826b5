"""A migration's whole life cycle through the running processes: worker,
projector, API, and a simulated phase worker answering the phase tasks."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import KafkaNames, Settings
from tests.support.processes import (
    ROOT,
    Processes,
    eventually,
    group_is_stable,
    http,
    process_env,
)
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e
SPEC = {
    "source_connection": "legacy",
    "source_table": "customers",
    "source_key": "id",
    "target_connection": "warehouse",
    "target_table": "customers",
}


@pytest.fixture
def system(settings: Settings, topics: KafkaNames, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(settings, tmp_path)
    try:
        procs.metrics_port = free_port()
        procs.start("worker", extra_env={"WORKER_METRICS_PORT": str(procs.metrics_port)})
        for name in ("projector", "api"):
            procs.start(name)
        procs.start("simulator", extra_env={"SIMULATED_PHASE_SECONDS": "1"})
        eventually(lambda: http("GET", f"http://127.0.0.1:{settings.api_port}/health")[0] == 200)
        eventually(lambda: group_is_stable(settings.kafka_bootstrap_servers, settings.app_id))
        yield procs
    finally:
        procs.stop_all()


def send(stack: Stack, names: KafkaNames, *commands: dict[str, object]) -> None:
    lines = [f"{c['migration_id']}|{json.dumps(c)}" for c in commands]
    subprocess.run(
        [
            str(ROOT / "scripts/kafka/console-producer"),
            "--bootstrap-server",
            stack.kafka_bootstrap,
            "--topic",
            names.commands,
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=|",
        ],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=120,
    )


def migration(settings: Settings, mid: str) -> dict[str, object]:
    status, body = http("GET", f"http://127.0.0.1:{settings.api_port}/api/v1/migrations/{mid}")
    return body if status == 200 else {}


def test_a_migration_runs_every_phase_pauses_resumes_and_completes(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    mid = "m-life"
    send(
        stack,
        topics,
        {"type": "StartMigration", "command_id": "c-1", "migration_id": mid, "spec": SPEC},
    )
    eventually(lambda: migration(settings, mid).get("status") == "RUNNING")

    send(
        stack,
        topics,
        {
            "type": "PauseMigration",
            "command_id": "c-2",
            "migration_id": mid,
            "reason": "maintenance",
        },
    )
    eventually(lambda: migration(settings, mid).get("status") == "PAUSED")
    send(stack, topics, {"type": "ResumeMigration", "command_id": "c-3", "migration_id": mid})

    done = eventually(
        lambda: migration(settings, mid).get("status") == "COMPLETED" and migration(settings, mid)
    )
    assert (done["phase"], done["rows_done"]) == ("reconcile", 100)
    _, history = http("GET", f"http://127.0.0.1:{settings.api_port}/api/v1/migrations/{mid}/events")
    types = [e["type"] for e in history["events"]]
    pause_to_resume = ["MigrationPausing", "MigrationPaused", "MigrationResumed"]
    assert [t for t in types if t in pause_to_resume] == pause_to_resume
    assert types[:2] == ["MigrationStarted", "PhaseRequested"]
    assert types.count("PhaseCompleted") == 5 and types[-1] == "MigrationCompleted"
    assert [e["sequence"] for e in history["events"]] == list(range(1, len(types) + 1))
    with urllib.request.urlopen(f"http://127.0.0.1:{system.metrics_port}/metrics") as resp:
        scraped = resp.read().decode()
    for line in (
        'migrator_commands_total{outcome="accepted",type="StartMigration"} 1.0',
        'migrator_commands_total{outcome="accepted",type="PauseMigration"} 1.0',
        'migrator_migrations_total{event="completed"} 1.0',
        "migrator_transaction_commit_seconds_count",
    ):
        assert line in scraped


def test_a_failed_phase_is_retried_from_its_checkpoint(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    mid = "m-flaky"
    spec = {**SPEC, "source_table": "flaky_orders"}
    send(
        stack,
        topics,
        {"type": "StartMigration", "command_id": "c-1", "migration_id": mid, "spec": spec},
    )
    failed = eventually(
        lambda: migration(settings, mid).get("status") == "FAILED" and migration(settings, mid)
    )
    assert (failed["phase"], failed["checkpoint"]) == ("transform", "40")
    assert "simulated outage" in failed["reason"]

    send(stack, topics, {"type": "RetryMigration", "command_id": "c-2", "migration_id": mid})

    assert eventually(lambda: migration(settings, mid).get("status") == "COMPLETED")


def test_the_tail_command_prints_any_topic_as_json(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    send(
        stack,
        topics,
        {"type": "StartMigration", "command_id": "c-1", "migration_id": "m-tail", "spec": SPEC},
    )
    eventually(lambda: migration(settings, "m-tail").get("status") == "COMPLETED")

    done = subprocess.run(
        [sys.executable, "-m", "cli", "tail", topics.events],
        cwd=ROOT,
        env=process_env(settings),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    mine = [line["value"] for line in lines if line["key"] == "m-tail"]
    assert [v["sequence"] for v in mine] == list(range(1, len(mine) + 1))
    assert mine[0]["type"] == "MigrationStarted" and mine[-1]["type"] == "MigrationCompleted"

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
    process_env,
)
from tests.support.stack import Stack
from tests.support.system import (
    OPERATOR_TOKEN,
    SPEC,
    api_http,
    migration,
    running_system,
    send_commands,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def system(settings: Settings, topics: KafkaNames, tmp_path: Path) -> Iterator[Processes]:
    with running_system(settings, topics, tmp_path, simulator=True) as procs:
        yield procs


def test_a_migration_runs_every_phase_pauses_resumes_and_completes(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    mid = "m-life"
    send_commands(
        stack,
        topics,
        {"type": "StartMigration", "command_id": "c-1", "migration_id": mid, "spec": SPEC},
    )
    eventually(lambda: migration(settings, mid).get("status") == "RUNNING")

    send_commands(
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
    send_commands(
        stack, topics, {"type": "ResumeMigration", "command_id": "c-3", "migration_id": mid}
    )

    done = eventually(
        lambda: migration(settings, mid).get("status") == "COMPLETED" and migration(settings, mid)
    )
    assert (done["phase"], done["rows_done"]) == ("reconcile", 100)
    _, history = api_http(
        "GET", f"http://127.0.0.1:{settings.api.port}/api/v1/migrations/{mid}/events"
    )
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
    send_commands(
        stack,
        topics,
        {"type": "StartMigration", "command_id": "c-1", "migration_id": mid, "spec": spec},
    )
    failed = eventually(
        lambda: migration(settings, mid).get("status") == "FAILED" and migration(settings, mid)
    )
    assert (failed["phase"], failed["checkpoint"]) == ("transform", "40")
    assert "simulated outage" in failed["reason"]

    send_commands(
        stack, topics, {"type": "RetryMigration", "command_id": "c-2", "migration_id": mid}
    )

    assert eventually(lambda: migration(settings, mid).get("status") == "COMPLETED")


def test_the_tail_command_prints_any_topic_as_json(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    send_commands(
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


def test_the_watch_command_follows_a_migration_to_its_end(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    send_commands(
        stack,
        topics,
        {"type": "StartMigration", "command_id": "c-1", "migration_id": "m-watch", "spec": SPEC},
    )
    eventually(lambda: migration(settings, "m-watch"))

    done = subprocess.run(
        [sys.executable, "-m", "cli", "watch", "m-watch", "--api-url", base_url(settings)],
        cwd=ROOT,
        env={**process_env(settings), "API_TOKEN": OPERATOR_TOKEN, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert final["status"] == "COMPLETED" and final["phase"] == "reconcile"
    assert "COMPLETED  reconcile" in done.stderr and "100/100" in done.stderr
    # the bytes of its five phases (the simulator counts 10 kB each) and the last one's rate
    assert final["bytes_done"] == 50_000 and "50.0 kB" in done.stderr
    assert final["rows_per_second"] > 0 and " rows/s" in done.stderr


def test_watch_says_what_is_wrong_for_an_unknown_migration(
    settings: Settings, system: Processes
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "watch", "m-nowhere", "--api-url", base_url(settings)],
        cwd=ROOT,
        env={**process_env(settings), "API_TOKEN": OPERATOR_TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1 and "404" in done.stderr


def base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.api.port}"

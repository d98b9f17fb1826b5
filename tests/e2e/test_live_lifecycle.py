"""A live migration's life through the running processes (worker, projector,
API; the phase worker simulated): started with `cdc` from the console
producer, SYNCING with its lag in the API and the worker's metrics, cut over
with `migrator cutover` (and, for another, a CutoverMigration typed as JSON
into the console producer), an abort with `migrator abort-cutover`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import KafkaNames, Settings
from tests.support.phase_simulator import FINAL, LAG_BYTES
from tests.support.processes import ROOT, Processes, eventually, process_env
from tests.support.stack import Stack
from tests.support.system import OPERATOR_TOKEN, SPEC, migration, running_system, send_commands

pytestmark = pytest.mark.e2e
LIVE = {**SPEC, "cdc": True}


@pytest.fixture
def system(settings: Settings, topics: KafkaNames, tmp_path: Path) -> Iterator[Processes]:
    with running_system(settings, topics, tmp_path, simulator=True, phase_seconds=0.5) as procs:
        yield procs


def start(stack: Stack, topics: KafkaNames, mid: str, **spec: Any) -> None:
    command = {
        "type": "StartMigration",
        "command_id": f"c-{mid}",
        "migration_id": mid,
        "spec": {**LIVE, **spec},
    }
    send_commands(stack, topics, command)


def reaches(settings: Settings, mid: str, status: str, **having: Any) -> dict[str, Any]:
    def there() -> dict[str, Any] | None:
        row = migration(settings, mid)
        ok = row.get("status") == status and all(row.get(k) == v for k, v in having.items())
        return row if ok else None

    found: dict[str, Any] = eventually(there, timeout=120)
    return found


def migrator(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    api = ["--api-url", f"http://127.0.0.1:{settings.api.port}"]
    return subprocess.run(
        [sys.executable, "-m", "cli", *args, *api],
        cwd=ROOT,
        env={**process_env(settings), "API_TOKEN": OPERATOR_TOKEN, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_live_migration_syncs_and_is_cut_over_from_the_cli(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    start(stack, topics, "m-live")
    syncing = reaches(settings, "m-live", "SYNCING", lag_bytes=LAG_BYTES)
    listed = migrator(settings, "list", "--status", "SYNCING")

    cut = migrator(settings, "cutover", "m-live", "--max-lag-bytes", "4096", "--freeze")
    done = reaches(settings, "m-live", "COMPLETED")

    assert syncing["phase"] == "sync" and syncing["position"] is not None
    assert listed.returncode == 0, listed.stderr
    assert f"m-live\tSYNCING\tsync\t10/0\tlag {LAG_BYTES} B 0.8s" in listed.stdout
    assert cut.returncode == 0, cut.stderr
    assert json.loads(cut.stdout)["outcome"] == "accepted"
    assert done["cutover"] == {"max_lag_bytes": 4096, "max_lag_seconds": None, "freeze": True}
    assert (done["cutover_result"]["position"], done["cutover_result"]["frozen"]) == (FINAL, True)


def test_a_cutover_typed_into_the_console_producer_and_an_abort_from_the_cli(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    start(stack, topics, "m-held", source_table="held_items")  # never catches up
    reaches(settings, "m-held", "SYNCING")
    gauge = eventually(lambda: _metric(system, "migrator_cdc_lag_bytes_max") == LAG_BYTES)

    send_commands(
        stack,
        topics,
        {
            "type": "CutoverMigration",
            "command_id": "c-cut",
            "migration_id": "m-held",
            "max_lag_bytes": 0,
            "max_lag_seconds": 0.5,
            "freeze": False,
        },
    )
    cutting = reaches(settings, "m-held", "CUTTING_OVER")
    rejected = migrator(settings, "cutover", "m-held")
    aborted = migrator(settings, "abort-cutover", "m-held", "--reason", "not tonight")
    again = reaches(settings, "m-held", "SYNCING")

    assert gauge is True
    assert cutting["cutover"] == {"max_lag_bytes": 0, "max_lag_seconds": 0.5, "freeze": False}
    assert rejected.returncode == 1
    said = " ".join(rejected.stderr.split())  # the console wraps long lines
    assert "409" in said and "only a SYNCING migration can cut over; it is CUTTING_OVER" in said
    assert aborted.returncode == 0, aborted.stderr
    phases = {p["phase"]: p for p in again["phases"]}
    assert phases["cutover"]["reason"] == "aborted: not tonight"


def _metric(system: Processes, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{system.metrics_port}/metrics") as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    return None

"""A real Prometheus (Debian's binary, project-local data, loopback, a free
port) scrapes the running processes; every metric a dashboard panel uses must
be among the series it scraped. The list comes from the dashboard JSON."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.conninfo import make_conninfo

from cli.topics import create_topics
from config import KafkaNames, Settings
from tests.support.data_plane import connections_env
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.prometheus import COMPOSE, prometheus_bin
from tests.support.stack import Stack, drop_database, free_port
from tests.support.system import SPEC, console_produce, send_commands
from tests.support.tables import connection_for, create_customers, fresh_database

pytestmark = pytest.mark.integration
DASHBOARD = COMPOSE / "grafana" / "dashboards" / "migrator.json"

# Metrics no run of this test can show yet (with the reason).
PENDING: dict[str, str] = {
    "migrator_cdc_slot_retained_bytes": "a series per replication slot, and this run makes"
    " no slot (test_replication_slots.py checks the gauge with real slots)",
}


def panel_metrics() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return sorted({m for e in exprs for m in re.findall(r"\bmigrator_[a-z_]+\b", e)})


@pytest.fixture(scope="module")
def scraped(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """The metric names Prometheus scraped from the running system."""
    unique = uuid.uuid4().hex[:10]
    logs = tmp_path_factory.mktemp("prometheus")
    with (
        _database(stack, unique) as url,
        fresh_database(stack.database_url, f"src_{unique}") as source,
        fresh_database(stack.database_url, f"tgt_{unique}") as target,
    ):
        create_customers(source, 500)  # the migration's table: the data plane's metrics show
        settings = Settings(
            kafka={
                "bootstrap_servers": stack.kafka_bootstrap,
                "topic_prefix": f"t{unique}.",
                "app_id": f"app-{unique}",
                "topic_partitions": 3,
            },
            database={"url": url},
            api={"port": free_port()},
        )  # fmt: skip
        names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        create_topics(settings)
        ports = {"worker": free_port(), "projector": free_port(), "phase": free_port()}
        connections = {"legacy": connection_for(source), "warehouse": connection_for(target)}
        procs = _system(settings, logs, ports, connections_env(connections))
        try:
            _traffic(settings, names, stack)
            yield _scrape_with_prometheus(logs, [*ports.values(), settings.api.port])
        finally:
            procs.stop_all()


def _database(stack: Stack, unique: str) -> Iterator[str]:
    from contextlib import contextmanager

    @contextmanager
    def made() -> Iterator[str]:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "p_{unique}"')
        try:
            yield make_conninfo(stack.database_url, dbname=f"p_{unique}")
        finally:
            drop_database(stack.database_url, f"p_{unique}")

    return made()


def _system(
    settings: Settings, logs: Path, ports: dict[str, int], connections: dict[str, str]
) -> Processes:
    procs = Processes(settings, logs)
    fast = {"OPS_METRICS_INTERVAL_SECONDS": "0.5", "API_AUTH": "none"}
    procs.start("worker", extra_env={**fast, "WORKER_METRICS_PORT": str(ports["worker"])})
    procs.start("projector", extra_env={**fast, "PROJECTOR_METRICS_PORT": str(ports["projector"])})
    procs.start("api", extra_env=fast)
    procs.start(
        "phase-worker",
        extra_env={**fast, **connections, "PHASE_METRICS_PORT": str(ports["phase"])},
    )
    eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
    return procs


def _traffic(settings: Settings, names: KafkaNames, stack: Stack) -> None:
    """A command and a bad record: the labelled counters get their first series."""
    start = {"type": "StartMigration", "command_id": "c-1", "migration_id": "m-p", "spec": SPEC}
    send_commands(stack, names, start)
    console_produce(stack, names.commands, ["m-bad|not json"], keyed=True)  # dead-lettered


def _scrape_with_prometheus(logs: Path, ports: list[int]) -> set[str]:
    port = free_port()
    config = logs / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "migrator", "static_configs": [
                        {"targets": [f"127.0.0.1:{p}" for p in ports]}
                    ]}
                ],
            }
        )
    )  # fmt: skip
    prometheus = subprocess.Popen(
        [
            str(prometheus_bin() / "prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={logs / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(logs / "prometheus.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        return eventually(lambda: _names_once_all_scraped(port, len(ports)), timeout=120)
    finally:
        prometheus.terminate()
        prometheus.wait(30)


def _names_once_all_scraped(port: int, targets: int) -> set[str]:
    """Once every target is up: the scraped names, as soon as they hold every
    panel metric not pending, or whatever they hold after 60 s more."""
    up = _get(port, "/api/v1/query?query=up")["data"]["result"]  # type: ignore[index]
    if len(up) < targets or any(r["value"][1] != "1" for r in up):
        return set()
    deadline = time.monotonic() + 60
    wanted = set(panel_metrics()) - set(PENDING)
    while True:
        names = set(_get(port, "/api/v1/label/__name__/values")["data"])  # type: ignore[arg-type]
        if wanted <= names or time.monotonic() > deadline:
            return names
        time.sleep(1)


def _get(port: int, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return dict(json.loads(resp.read()))


@pytest.mark.parametrize(
    "metric",
    [
        pytest.param(m, marks=pytest.mark.xfail(reason=f"{m}: {PENDING[m]}", strict=True))
        if m in PENDING
        else m
        for m in panel_metrics()
    ],
)
def test_every_panel_metric_is_scraped(metric: str, scraped: set[str]) -> None:
    assert metric in scraped

"""compose/ cannot run here (no Docker engine); check what can be checked:
its structure, that every command it runs exists in our CLI, that every
setting it passes is one of ours, that every file it mounts exists, and that
Prometheus scrapes each process on the port that process is told to serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from cli.main import app
from config import Settings

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
OURS = {"topics", "worker", "phase-worker", "projector", "api"}


def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_every_service_has_an_image_or_a_build_and_healthy_dependencies() -> None:
    found = services()

    assert {"kafka", "postgres", "prometheus", "grafana", *OURS} <= set(found)
    assert found["kafka"]["image"].startswith("apache/kafka:")
    for name, service in found.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in found, (name, dependency)


def test_every_command_of_ours_is_a_cli_subcommand() -> None:
    cli = get_command(app)

    for name, service in services().items():
        if "build" not in service:
            continue
        group = cli
        for word in service["command"]:
            group = group.commands[word]  # type: ignore[attr-defined]
        assert group is not None, name


def test_every_setting_passed_to_our_processes_is_a_settings_field() -> None:
    fields = set(Settings.environment_names())

    for name in OURS:
        assert set(services()[name]["environment"]) <= fields, name


def test_every_mounted_file_and_the_build_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0]
            assert (COMPOSE_DIR / host).exists(), (name, host)
        if "build" in service:
            build = COMPOSE_DIR / service["build"]["context"]
            assert (build / service["build"]["dockerfile"]).is_file(), name


def test_prometheus_scrapes_each_process_where_it_serves_metrics() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    env = {name: services()[name]["environment"] for name in OURS}

    assert targets == {
        f"worker:{env['worker']['WORKER_METRICS_PORT']}",
        f"phase-worker:{env['phase-worker']['PHASE_METRICS_PORT']}",
        f"projector:{env['projector']['PROJECTOR_METRICS_PORT']}",
        "api:8088",
    }
    mounts = services()["prometheus"]["volumes"]
    assert any(m.endswith(":" + config["rule_files"][0] + ":ro") for m in mounts)


def test_grafana_is_provisioned_with_the_dashboard_and_its_datasource() -> None:
    provisioning = COMPOSE_DIR / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    dashboard = json.loads((COMPOSE_DIR / "grafana" / "dashboards" / "migrator.json").read_text())

    (datasource,) = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}

"""compose/ cannot run here (no Docker engine); check what can be checked:
its structure, and that every command it runs exists in our CLI."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.main import get_command

from cli.main import app

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


def test_every_service_has_an_image_or_a_build_and_healthy_dependencies() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]

    assert {"kafka", "postgres", "worker", "projector", "api"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)


def test_every_command_of_ours_is_a_cli_subcommand() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    cli = get_command(app)

    for name, service in services.items():
        if "build" not in service:
            continue
        words = service["command"]
        group = cli
        for word in words:
            group = group.commands[word]  # type: ignore[attr-defined]
        assert group is not None, name

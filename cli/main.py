"""`migrator`: run the processes, create topics, submit and inspect migrations."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cli import live, steering
from cli.diff import diff as diff_report
from cli.diff import repair as repair_keys
from cli.dlq import app as dlq_app
from cli.errors import Commands
from cli.lag import lag as show_lag
from cli.rebuild import app as projection_app
from cli.refold import refold
from cli.topic_replay import replay as replay_topic
from cli.trace import trace as show_trace
from config import load_settings
from config.logs import configure_logging

app = typer.Typer(cls=Commands, no_args_is_help=True, help="Operate the migration orchestrator.")
topics = typer.Typer(no_args_is_help=True, help="Kafka topics of the contract.")
app.add_typer(topics, name="topics")
app.add_typer(dlq_app, name="dlq")
app.add_typer(projection_app, name="projection")
projection_app.command("refold")(refold)
for _name, _command in {**steering.COMMANDS, **live.COMMANDS}.items():
    app.command(_name)(_command)
topics.command("replay")(replay_topic)
app.command("lag")(show_lag)
app.command("diff")(diff_report)
app.command("repair")(repair_keys)
app.command("trace")(show_trace)
app.add_typer(topics, name="topic", hidden=True)  # `migrator topic replay` too
console = Console(stderr=True)


@app.callback()
def _logging() -> None:
    """Every command logs at LOG_LEVEL."""
    try:
        settings = load_settings()
    except ValueError:
        return  # invalid settings: the command that reads them says why
    configure_logging(settings)


@app.command()
def worker() -> None:
    """Run one orchestrator worker of the consumer group."""
    from streams.orchestrator.__main__ import main as run_orchestrator

    sys.argv = [sys.argv[0], "worker"]
    raise typer.Exit(run_orchestrator())


@app.command("phase-worker")
def phase_worker() -> None:
    """Run one phase worker: extract, transform, validate, load and reconcile."""
    from streams.dataplane.__main__ import main as run_dataplane

    raise typer.Exit(run_dataplane())


@app.command()
def projector() -> None:
    """Run the projector: migration.events into the PostgreSQL read model."""
    from projections.__main__ import main as run_projector

    run_projector()


@app.command()
def api() -> None:
    """Serve the HTTP API."""
    from api.__main__ import main as run_api

    run_api()


@topics.command("create")
def topics_create() -> None:
    """Create every topic (idempotent)."""
    from cli.topics import create_topics

    for topic, outcome in sorted(create_topics(load_settings()).items()):
        console.print(f"{outcome:>8}  {topic}")


@app.command("tail")
def tail_topic(
    topic: Annotated[str, typer.Argument(help="topic name, e.g. migration.events")],
    from_beginning: Annotated[bool, typer.Option(help="start at the oldest record")] = True,
    follow: Annotated[bool, typer.Option(help="keep waiting for new records")] = False,
) -> None:
    """Print a topic's records as JSON lines, decoded (read_committed)."""
    from cli.tail import tail

    for line in tail(load_settings(), topic, from_beginning, follow):
        print(line, flush=True)


ApiUrl = Annotated[str, typer.Option(envvar="MIGRATOR_API_URL", help="API base URL")]


@app.command()
def submit(
    spec_file: Annotated[Path, typer.Argument(help="JSON file with the migration spec")],
    api_url: ApiUrl = "http://127.0.0.1:8088",
    migration_id: Annotated[str | None, typer.Option(help="choose the migration id")] = None,
    wait: Annotated[bool, typer.Option(help="wait until the read model shows it")] = True,
    wait_seconds: Annotated[float, typer.Option(help="how long to wait, at most 60")] = 60.0,
) -> None:
    """Submit a migration through the API; print its id and command id."""
    spec = _read_json(spec_file)
    body: dict[str, Any] = {"spec": spec}
    if migration_id:
        body["migration_id"] = migration_id
    url = f"{api_url}/api/v1/migrations" + (f"?wait=true&timeout={wait_seconds:g}" if wait else "")
    print(json.dumps(_http("POST", url, body, timeout=wait_seconds + 10), indent=2))


@app.command()
def status(migration_id: str, api_url: ApiUrl = "http://127.0.0.1:8088") -> None:
    """Show one migration from the read model."""
    print(json.dumps(_http("GET", f"{api_url}/api/v1/migrations/{migration_id}"), indent=2))


@app.command("watch")
def watch_migration(migration_id: str, api_url: ApiUrl = "http://127.0.0.1:8088") -> None:
    """Follow one migration's phase and rows done until it ends (or pauses)."""
    from cli.watch import watch

    row = watch(api_url, migration_id)
    print(json.dumps(row, indent=2))
    raise typer.Exit(0 if row.get("status") in ("COMPLETED", "PAUSED") else 1)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]cannot read {path}: {exc}[/red]")
        raise typer.Exit(2) from exc


def _http(method: str, url: str, body: object = None, timeout: float = 30.0) -> Any:
    from cli.api_client import call_api

    return call_api(method, url, body, timeout)


def main() -> None:
    app()

"""`migrator pause|resume|cancel|retry <id>` and `migrator list`: steer and
list migrations through the HTTP API (a token with the operator role for
commands: API_TOKEN)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.api_client import call_api

ApiUrl = Annotated[str, typer.Option(envvar="MIGRATOR_API_URL", help="API base URL")]
Wait = Annotated[bool, typer.Option(help="wait until the read model shows the effect")]


def _steer(kind: str, migration_id: str, api_url: str, wait: bool, reason: str = "") -> None:
    post_steering(kind, migration_id, {"reason": reason} if reason else {}, api_url, wait)


def post_steering(
    kind: str, migration_id: str, body: dict[str, Any], api_url: str, wait: bool
) -> None:
    """POST a steering command (`kind`) for a migration and print the answer."""
    url = f"{api_url}/api/v1/migrations/{migration_id}/{kind}"
    answer = call_api("POST", url + ("?wait=true&timeout=30" if wait else ""), body, timeout=40)
    print(json.dumps(answer, indent=2))


def pause(
    migration_id: str,
    reason: Annotated[str, typer.Option(help="why (shown with the migration)")] = "",
    api_url: ApiUrl = "http://127.0.0.1:8088",
    wait: Wait = True,
) -> None:
    """Pause a RUNNING migration at its next checkpoint."""
    _steer("pause", migration_id, api_url, wait, reason)


def resume(migration_id: str, api_url: ApiUrl = "http://127.0.0.1:8088", wait: Wait = True) -> None:
    """Resume a PAUSED migration from its checkpoint."""
    _steer("resume", migration_id, api_url, wait)


def cancel(
    migration_id: str,
    reason: Annotated[str, typer.Option(help="why")] = "",
    api_url: ApiUrl = "http://127.0.0.1:8088",
    wait: Wait = True,
) -> None:
    """Cancel a migration (final)."""
    _steer("cancel", migration_id, api_url, wait, reason)


def retry(migration_id: str, api_url: ApiUrl = "http://127.0.0.1:8088", wait: Wait = True) -> None:
    """Retry a FAILED migration from its last checkpoint."""
    _steer("retry", migration_id, api_url, wait)


def list_migrations(
    status: Annotated[list[str] | None, typer.Option(help="only these statuses")] = None,
    limit: Annotated[int, typer.Option(help="page size")] = 50,
    api_url: ApiUrl = "http://127.0.0.1:8088",
) -> None:
    """List migrations, newest first (one line each)."""
    query = f"limit={limit}" + "".join(f"&status={s}" for s in status or [])
    page = call_api("GET", f"{api_url}/api/v1/migrations?{query}")
    for m in page["migrations"]:
        progress = f"{m['rows_done']}/{m['rows_total']}"
        line = [m["migration_id"], m["status"], m["phase"] or "", progress]
        if m.get("lag_bytes") is not None:  # a live migration (domain.live)
            line.append(f"lag {m['lag_bytes']} B {m.get('lag_seconds') or 0:.1f}s")
        print("\t".join(line))


COMMANDS: dict[str, Callable[..., None]] = {
    "pause": pause,
    "resume": resume,
    "cancel": cancel,
    "retry": retry,
    "list": list_migrations,
}

"""`migrator watch <id>`: one migration's progress, live, until it ends.

Long-polls the API (`?since_version=`, the same cursor as the WebSocket) and
draws the current phase's rows done of rows total as a progress bar.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.api_client import call_api

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "PAUSED"})


def describe(row: dict[str, Any]) -> str:
    """One line: status and phase, and the score or reason when there is one."""
    parts = [row.get("status", "?"), row.get("phase") or "-"]
    if row.get("score") is not None:
        parts.append(f"score {row['score']:.4f}")
    if row.get("reason"):
        parts.append(str(row["reason"]))
    return "  ".join(parts)


def watch(api_url: str, migration_id: str, poll_seconds: float = 10.0) -> dict[str, Any]:
    """Follow the migration until it is COMPLETED, FAILED, CANCELLED or PAUSED."""
    url = f"{api_url}/api/v1/migrations/{migration_id}"
    row: dict[str, Any] = call_api("GET", url)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(describe(row), total=None)
        while True:
            total = row.get("rows_total") or None
            progress.update(
                bar, description=describe(row), completed=row.get("rows_done", 0), total=total
            )
            if row.get("status") in FINAL:
                return row
            since = f"?since_version={row.get('version', 0)}&timeout={poll_seconds:g}"
            row = call_api("GET", url + since, timeout=poll_seconds + 10)

"""`migrator watch <id>`: one migration's progress, live, until it ends.

Long-polls the API (`?since_version=`, the same cursor as the WebSocket) and
draws the current phase's rows done of rows total as a progress bar, with the
bytes streamed over every phase, the current phase's rates and its ETA (the
phase's: later phases are not estimated). A live migration (SYNCING,
CUTTING_OVER) shows its lag and the source position applied last; it is
followed until it ends like any other.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.api_client import call_api

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "PAUSED"})
LIVE = frozenset({"SYNCING", "CUTTING_OVER"})


def describe(row: dict[str, Any]) -> str:
    """One line: status and phase, and the score or reason when there is one."""
    parts = [row.get("status", "?"), row.get("phase") or "-"]
    if row.get("score") is not None:
        parts.append(f"score {row['score']:.4f}")
    if row.get("reason"):
        parts.append(str(row["reason"]))
    return "  ".join(parts)


def pace(row: dict[str, Any]) -> str:
    """Bytes streamed, the current phase's rates and, while it runs, its ETA:
    as much of it as the read model knows."""
    parts = []
    if row.get("bytes_done"):
        parts.append(decimal(row["bytes_done"]))
    if row.get("rows_per_second") is not None:
        parts.append(f"{rate(row['rows_per_second'])} rows/s")
    if row.get("bytes_per_second") is not None:
        parts.append(f"{decimal(round(row['bytes_per_second']))}/s")
    if row.get("eta_seconds") is not None and row.get("status") not in FINAL:
        parts.append(f"phase ETA {duration(row['eta_seconds'])}")
    if row.get("status") in LIVE and row.get("lag_bytes") is not None:
        parts.append(lag(row))
    return "  ".join(parts)


def lag(row: dict[str, Any]) -> str:
    """A live migration's lag: bytes, seconds (when known) and the position applied."""
    said = f"lag {decimal(row['lag_bytes'])}"
    if row.get("lag_seconds") is not None:
        said += f" {row['lag_seconds']:.1f}s"
    return f"{said} at {row['position']}" if row.get("position") else said


def rate(per_second: float) -> str:
    """Whole numbers from 10 up; two significant digits below (0.5, not 0)."""
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.2g}"


def duration(seconds: float) -> str:
    """The two largest units: 45s, 3m 20s, 2h 05m, 3d 04h."""
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def watch(api_url: str, migration_id: str, poll_seconds: float = 10.0) -> dict[str, Any]:
    """Follow the migration until it is COMPLETED, FAILED, CANCELLED or PAUSED."""
    url = f"{api_url}/api/v1/migrations/{migration_id}"
    row: dict[str, Any] = call_api("GET", url)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[pace]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(describe(row), total=None, pace="")
        while True:
            total = row.get("rows_total") or None
            progress.update(
                bar,
                description=describe(row),
                completed=row.get("rows_done", 0),
                total=total,
                pace=pace(row),
            )
            if row.get("status") in FINAL:
                return row
            since = f"?since_version={row.get('version', 0)}&timeout={poll_seconds:g}"
            row = call_api("GET", url + since, timeout=poll_seconds + 10)

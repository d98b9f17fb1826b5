"""`migrator cutover|abort-cutover <id>` and `migrator slots`: the commands of a
live migration (a spec with `cdc`, domain.live), through the HTTP API, and the
replication slots the migrations keep on the configured databases (read
directly, with the PHASE_CONNECTIONS of this machine; whose each is, from the
read model at DATABASE_URL). `slots` exits 1 when a database cannot be read,
3 when a slot is left behind (no live migration owns it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from cli.errors import err, fail
from cli.steering import post_steering
from config import load_settings
from ops.slots import Slot, SlotReport, slot_report

ApiUrl = Annotated[str, typer.Option(envvar="MIGRATOR_API_URL", help="API base URL")]
Wait = Annotated[bool, typer.Option(help="wait until the read model shows the effect")]


def cutover(
    migration_id: str,
    max_lag_bytes: Annotated[
        int | None, typer.Option(min=0, help="the most source WAL not yet applied, in bytes")
    ] = None,
    max_lag_seconds: Annotated[
        float | None, typer.Option(min=0, help="the most age of the oldest change not applied")
    ] = None,
    freeze: Annotated[
        bool, typer.Option(help="freeze writes on the source table before waiting")
    ] = False,
    api_url: ApiUrl = "http://127.0.0.1:8088",
    wait: Wait = True,
) -> None:
    """Cut a SYNCING migration over once its lag is at most the maximum."""
    body: dict[str, Any] = {"freeze": freeze}
    if max_lag_bytes is not None:
        body["max_lag_bytes"] = max_lag_bytes
    if max_lag_seconds is not None:
        body["max_lag_seconds"] = max_lag_seconds
    post_steering("cutover", migration_id, body, api_url, wait)


def abort_cutover(
    migration_id: str,
    reason: Annotated[str, typer.Option(help="why (shown with the migration)")] = "",
    api_url: ApiUrl = "http://127.0.0.1:8088",
    wait: Wait = True,
) -> None:
    """Abort a cutover before its switch: the source writable, the migration syncing again."""
    post_steering(
        "abort-cutover", migration_id, {"reason": reason} if reason else {}, api_url, wait
    )


def slots(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document, not a table")] = False,
) -> None:
    """The migrations' replication slots on every configured database, and the WAL each keeps."""
    settings = load_settings()
    connections = settings.phase.connections
    if not connections:
        raise fail("no databases configured: set PHASE_CONNECTIONS or PHASE_CONNECTIONS_FILE")
    report = slot_report(connections, _statuses(settings.database.url.get_secret_value()))
    if as_json:
        print(json.dumps(asdict(report)))
    else:
        Console().print(_table(report))  # as wide as the terminal is now
    if report.unreachable:
        raise typer.Exit(1)
    if any(s.left_behind for s in report.slots):
        raise typer.Exit(3)


def _statuses(database_url: str) -> dict[str, str] | None:
    """Every live migration's status from the read model (None: not readable)."""
    query = "SELECT migration_id, status FROM migrations WHERE spec->>'cdc' = 'true'"
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            return {str(m): str(s) for m, s in conn.execute(query).fetchall()}
    except psycopg.Error as exc:
        err.print(f"[yellow]whose each slot is: unknown (read model: {exc})[/yellow]")
        return None


def _table(report: SlotReport) -> Table:
    table = Table(title="replication slots")
    columns = ("connection", "slot", "migration", "active", "retained", "lag", "wal status")
    for column in columns:
        table.add_column(column, justify="right" if column in ("retained", "lag") else "left")
    for s in report.slots:
        active = "yes" if s.active else "no"
        retained, lag = _size(s.retained_bytes), _size(s.lag_bytes)
        table.add_row(s.connection, s.slot, _owner(s), active, retained, lag, s.wal_status or "")
    for connection, why in report.unreachable.items():
        table.add_row(connection, f"[red]unreachable: {why}[/red]", "", "", "", "", "")
    if not report.slots and not report.unreachable:
        table.caption = "no slots"
    return table


def _owner(slot: Slot) -> str:
    owner = f"{slot.migration_id} ({slot.migration_status})" if slot.migration_id else "unknown"
    return f"[red]{owner}: left behind[/red]" if slot.left_behind else owner


def _size(count: int) -> str:
    value, unit = float(count), 0
    units = ("B", "kB", "MB", "GB", "TB")
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f"{count} B" if unit == 0 else f"{value:.1f} {units[unit]}"


COMMANDS: dict[str, Callable[..., None]] = {
    "cutover": cutover,
    "abort-cutover": abort_cutover,
    "slots": slots,
}

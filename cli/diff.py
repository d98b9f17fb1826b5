"""`migrator diff <id>` and `migrator repair <id>`: a migration's row-level
diff report (taken anew with `--take`), and the repair of the keys it found,
through the HTTP API. Both end with the report: exit 0 when clean, 3 when
keys differ."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table

from cli.api_client import call_api
from cli.watch import watch

ApiUrl = Annotated[str, typer.Option(envvar="MIGRATOR_API_URL", help="API base URL")]
AsJson = Annotated[bool, typer.Option("--json", help="the report as one JSON document")]
DIFFERS = 3  # the exit code of a report with differing keys
out = Console()


def diff(
    migration_id: str,
    take: Annotated[bool, typer.Option(help="take a new diff first, and wait for it")] = False,
    as_json: AsJson = False,
    api_url: ApiUrl = "http://127.0.0.1:8088",
) -> None:
    """Show the migration's latest diff of source and target, row by row."""
    if take:
        _command("diff", migration_id, api_url)
    _report(migration_id, api_url, as_json)


def repair(
    migration_id: str, as_json: AsJson = False, api_url: ApiUrl = "http://127.0.0.1:8088"
) -> None:
    """Re-copy the keys the last diff found differing, then show the new diff."""
    _command("repair", migration_id, api_url)
    _report(migration_id, api_url, as_json)


def _command(kind: str, migration_id: str, api_url: str) -> None:
    url = f"{api_url}/api/v1/migrations/{migration_id}/{kind}?wait=true&timeout=30"
    answer = call_api("POST", url, {}, timeout=40)
    if answer.get("outcome") == "pending":
        out.print(f"{kind} asked; not seen in the read model yet")
    watch(api_url, migration_id, poll_seconds=5.0)


def _report(migration_id: str, api_url: str, as_json: bool) -> None:
    report = call_api("GET", f"{api_url}/api/v1/migrations/{migration_id}/diff")
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        out.print(render(report))
    if not report["clean"]:
        raise typer.Exit(DIFFERS)


def render(report: dict[str, Any]) -> Group:
    """The report as a person reads it: the verdict, what was compared, samples."""
    facts = Table(show_header=False, title=f"diff of {report['migration_id']}")
    snap = report.get("snapshot") or {}
    for name, value in (
        ("verdict", "clean" if report["clean"] else f"{report['differing']} keys differ"),
        ("source", f"{report['source']['connection']} {report['source']['table']}"),
        ("target", f"{report['target']['connection']} {report['target']['table']}"),
        ("taken by", f"{report['phase']} at {report['taken_at']} in {report['seconds']} s"),
        ("source snapshot", f"{snap.get('id')} at {snap.get('taken_at')}" if snap else "-"),
        ("rows", f"source {report['source_rows']}, target {report['target_rows']}"),
        ("missing / extra / different", _counts(report)),
        ("ranges compared", str(report["ranges_compared"])),
    ):
        facts.add_row(name, value)
    samples = Table(title="sample keys")
    samples.add_column("kind")
    samples.add_column("keys")
    for kind in ("missing", "extra", "different"):
        samples.add_row(kind, ", ".join((report.get("samples") or {}).get(kind, [])))
    return Group(facts, samples)


def _counts(report: dict[str, Any]) -> str:
    return f"{report['missing']} / {report['extra']} / {report['different']}"

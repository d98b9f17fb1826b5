"""`migrator lag`: consumer lag per group and topic, DLQ depth per dead-letter topic."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.table import Table

from cli.errors import operator_errors
from config import load_settings
from ops.lag import LagReport, lag_report

out = Console()


def lag(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document, not tables")] = False,
) -> None:
    """How far each consumer group is behind, and how many dead letters wait."""
    settings = load_settings()
    with operator_errors():
        report = lag_report(settings)
    if as_json:
        print(json.dumps(asdict(report)))
        return
    out.print(_tables(report))


def _tables(report: LagReport) -> Group:
    lags = Table(title="consumer lag")
    for column in ("group", "topic", "lag"):
        lags.add_column(column, justify="right" if column == "lag" else "left")
    for row in report.consumer_lag:
        lags.add_row(row.group, row.topic, str(row.lag))
    depths = Table(title="DLQ depth")
    depths.add_column("dead-letter topic")
    depths.add_column("records", justify="right")
    for depth in report.dlq_depth:
        depths.add_row(depth.topic, str(depth.records))
    return Group(lags, depths)

"""The diff report as the API serves it and as `migrator diff` prints it,
built from a DiffRecorded event as the read model keeps it."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from api.diffs import report
from cli.diff import render
from schemas.records import to_plain
from tests.fixtures.samples import SAMPLES

MIGRATION = {
    "migration_id": "m-7f3a",
    "status": "FAILED",
    "spec": {
        "source_connection": "legacy",
        "source_table": "customers",
        "source_key": "id",
        "target_connection": "warehouse",
        "target_table": "dim_customer",
    },
}


def stored(**changes: Any) -> dict[str, Any]:
    """The DiffRecorded sample as its history row holds it."""
    payload = {**json.loads(json.dumps(to_plain(SAMPLES["DiffRecorded"]))), **changes}
    return {"sequence": 14, "occurred_at": "2026-03-01T12:00:00+00:00", "payload": payload}


def test_a_report_names_what_was_compared_what_differs_and_when() -> None:
    found = report(MIGRATION, stored())

    assert found["clean"] is False
    assert (found["missing"], found["extra"], found["different"], found["differing"]) == (
        2,
        1,
        3,
        6,
    )
    assert found["source"] == {"connection": "legacy", "table": "customers"}
    assert found["target"] == {"connection": "warehouse", "table": "dim_customer"}
    assert found["samples"]["different"] == ["4", "5", "6"]
    assert found["snapshot"]["lsn"] == "0/1A2B3C4D" and found["ranges_compared"] == 31
    assert found["sequence"] == 14 and found["phase"] == "reconcile"


def test_a_report_is_clean_when_only_the_targets_own_rows_are_extra() -> None:
    found = report(MIGRATION, stored(missing=0, different=0, differing=0, extra=4))

    assert found["clean"] is True and found["extra"] == 4


def test_the_cli_prints_the_verdict_counts_and_samples() -> None:
    console = Console(record=True, width=200)

    console.print(render(report(MIGRATION, stored())))

    text = console.export_text()
    assert "6 keys differ" in text and "2 / 1 / 3" in text
    assert "17, 18" in text and "(3,9)" in text and "legacy customers" in text

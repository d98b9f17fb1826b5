"""The import direction is the architecture: import-linter checks the
contracts in pyproject.toml (domain <- config <- schemas <- streams.kafka <-
orchestrator, data plane, projections, ops <- api <- cli; the orchestrator and
the data plane never import each other; the API runs no stream processor)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_import_contracts_are_kept() -> None:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 2 kept, 0 broken." in run.stdout

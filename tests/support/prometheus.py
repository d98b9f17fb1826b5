"""Prometheus and promtool from Debian's package, unpacked into .local by
scripts/install-prometheus (run here when missing)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"


def prometheus_bin() -> Path:
    """The folder holding `prometheus` and `promtool`."""
    out = subprocess.run(
        [str(ROOT / "scripts/install-prometheus")],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return Path(out.stdout.strip().splitlines()[-1])

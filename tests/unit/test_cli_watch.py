"""What `migrator watch` says of a migration's pace: bytes, rates and the
current phase's ETA, each only when the read model knows it."""

from __future__ import annotations

from typing import Any

import pytest

from cli.watch import duration, pace, rate

RUNNING: dict[str, Any] = {
    "status": "RUNNING",
    "phase": "extract",
    "bytes_done": 12_345_678,
    "rows_per_second": 1234.4,
    "bytes_per_second": 4_500_000.2,
    "eta_seconds": 200.4,
}


def test_a_running_migration_shows_its_bytes_rates_and_phase_eta() -> None:
    assert pace(RUNNING) == "12.3 MB  1,234 rows/s  4.5 MB/s  phase ETA 3m 20s"


def test_what_is_not_known_is_left_out() -> None:
    started = {"status": "RUNNING", "bytes_done": 0, "rows_per_second": None, "eta_seconds": None}

    assert pace(started) == ""
    assert pace({"status": "RUNNING", "rows_per_second": 0.5}) == "0.5 rows/s"


@pytest.mark.parametrize("status", ["COMPLETED", "PAUSED", "FAILED", "CANCELLED"])
def test_a_migration_that_is_not_running_shows_no_eta(status: str) -> None:
    assert "ETA" not in pace({**RUNNING, "status": status})


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0s"),
        (45.4, "45s"),
        (200, "3m 20s"),
        (7500, "2h 05m"),
        (3 * 86_400 + 4 * 3600, "3d 04h"),
    ],
)
def test_a_duration_is_said_in_its_two_largest_units(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_rates_are_whole_from_ten_up_and_keep_two_digits_below() -> None:
    assert [rate(r) for r in (12_345.6, 10.0, 9.87, 0.04)] == ["12,346", "10", "9.9", "0.04"]


def test_a_live_migration_shows_its_lag_and_position() -> None:
    syncing = {
        "status": "SYNCING",
        "lag_bytes": 8192,
        "lag_seconds": 0.75,
        "position": "0/1A2C00",
    }

    assert pace(syncing) == "lag 8.2 kB 0.8s at 0/1A2C00"
    assert pace({**syncing, "lag_seconds": None, "position": None}) == "lag 8.2 kB"
    assert pace({**syncing, "status": "COMPLETED"}) == ""

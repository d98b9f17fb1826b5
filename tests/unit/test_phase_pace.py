"""A phase run's rates and ETA, from its start and what it has done (pure)."""

from __future__ import annotations

import pytest

from projections.pace import UNKNOWN, Done, Pace, RunStart, pace, remaining, restarted

T0 = "2026-01-01T00:00:00.000+00:00"


def at(seconds: int) -> str:
    return f"2026-01-01T00:{seconds // 60:02d}:{seconds % 60:02d}.000+00:00"


def test_rates_count_from_the_runs_start_and_the_eta_is_the_rest_at_that_rate() -> None:
    measured = pace(RunStart(T0), Done(at(10), rows=50, rows_total=100, bytes=5000))

    assert measured == Pace(5.0, 500.0, 10.0, "2026-01-01T00:00:20+00:00")


def test_a_resumed_run_counts_only_what_it_did_itself() -> None:
    start = RunStart(at(60), rows=40, bytes=4000)

    measured = pace(start, Done(at(80), rows=80, rows_total=100, bytes=8000))

    assert (measured.rows_per_second, measured.bytes_per_second) == (2.0, 200.0)
    assert measured.eta_seconds == 10.0


@pytest.mark.parametrize(
    ("done", "eta"),
    [
        (Done(at(10), rows=30, rows_total=0, bytes=0), None),  # no total: no ETA
        (Done(at(10), rows=0, rows_total=100, bytes=0), None),  # nothing moved yet
        (Done(at(10), rows=100, rows_total=100, bytes=0), 0.0),  # there
        (Done(at(10), rows=120, rows_total=100, bytes=0), 0.0),  # past the estimate
    ],
)
def test_the_eta_is_unknown_without_a_total_or_a_rate(done: Done, eta: float | None) -> None:
    assert pace(RunStart(T0), done).eta_seconds == eta


def test_bytes_are_unknown_while_none_were_counted() -> None:
    measured = pace(RunStart(T0), Done(at(10), rows=10, rows_total=100, bytes=0))

    assert (measured.rows_per_second, measured.bytes_per_second) == (1.0, None)


def test_without_a_start_or_before_any_time_passed_nothing_is_known() -> None:
    done = Done(T0, rows=10, rows_total=100, bytes=10)

    assert pace(None, done) == UNKNOWN
    assert pace(RunStart(T0), done) == UNKNOWN
    assert pace(RunStart(at(5)), done) == UNKNOWN  # a clock that went back


def test_times_that_cannot_be_compared_give_no_pace() -> None:
    done = Done("2026-01-01T00:00:10", rows=10, rows_total=100, bytes=10)  # no offset

    assert pace(RunStart(T0), done) == UNKNOWN
    assert pace(RunStart("yesterday"), Done(at(1), 1, 2, 0)) == UNKNOWN


def test_an_eta_past_the_calendar_has_seconds_but_no_date() -> None:
    crawl = pace(RunStart(T0), Done(at(59), rows=1, rows_total=10**18, bytes=0))

    assert crawl.eta_seconds is not None and crawl.eta_seconds > 1e18
    assert crawl.eta_at is None


def test_fewer_rows_or_bytes_than_counted_before_is_a_restart() -> None:
    assert restarted(50, 500, Done(at(1), rows=0, rows_total=100, bytes=0))
    assert restarted(50, 500, Done(at(1), rows=60, rows_total=100, bytes=10))
    assert not restarted(50, 500, Done(at(1), rows=50, rows_total=100, bytes=500))


def test_remaining_is_rows_to_go_over_the_rate() -> None:
    assert remaining(25, 100, 5.0) == 15.0
    assert remaining(25, 100, 0.0) is None
    assert remaining(25, 0, 5.0) is None

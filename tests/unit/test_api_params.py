"""Query parameters: checked, with messages that name the parameter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import MultiDict

from api import params
from api.errors import BadRequest


def q(**values: str) -> MultiDict[str]:
    return MultiDict(values)


def test_a_cursor_round_trips_and_a_forged_one_is_a_400() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    token = params.encode_cursor(at, "m-7")

    assert params.cursor(q(cursor=token)) == (at.isoformat(), "m-7")
    for forged in ("", "!!!", "bm9wZQ", "WzEsMl0", "WyJ4IiwibSJd"):
        with pytest.raises(BadRequest, match="cursor"):
            params.cursor(q(cursor=forged))


def test_statuses_are_checked_and_may_repeat_or_be_comma_separated() -> None:
    query = MultiDict([("status", "RUNNING,PAUSED"), ("status", "FAILED")])

    assert params.statuses(query) == ["FAILED", "PAUSED", "RUNNING"]
    with pytest.raises(BadRequest, match=r"unknown: \[.LOST.\]"):
        params.statuses(q(status="LOST"))


@pytest.mark.parametrize("raw", ["0", "-1", "61", "soon", "nan"])
def test_a_timeout_out_of_range_is_a_400(raw: str) -> None:
    with pytest.raises(BadRequest, match="timeout must be"):
        params.seconds(q(timeout=raw))


def test_numbers_in_range_are_taken() -> None:
    assert params.seconds(q()) == params.WAIT_SECONDS
    assert params.seconds(q(timeout="2.5")) == 2.5
    assert params.integer(q(limit="7"), "limit", 50, 1, 500) == 7
    assert params.since_version(q()) is None and params.since_version(q(since_version="3")) == 3
    with pytest.raises(BadRequest, match="since_version must be"):
        params.since_version(q(since_version=str(2**70)))

"""The bounds on commands taken on (api.admission): past them, 503 at once, with why."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from api.admission import CommandSlots, LoopLag


def test_a_command_past_the_bound_is_refused_with_the_reason_and_a_retry_after() -> None:
    slots = CommandSlots(2)

    with slots.hold(), slots.hold():
        with pytest.raises(web.HTTPServiceUnavailable) as refused, slots.hold():
            pass  # never runs
        assert slots.held == 2

    assert refused.value.reason == "2 commands already in flight; try again shortly"
    assert refused.value.headers["Retry-After"] == "1"
    assert slots.held == 0


def test_a_place_is_given_back_when_its_command_fails() -> None:
    slots = CommandSlots(1)

    with pytest.raises(RuntimeError), slots.hold():
        raise RuntimeError("broker away")
    with slots.hold():
        assert slots.held == 1


def test_a_command_is_refused_while_the_event_loop_runs_late() -> None:
    late = 0.8
    slots = CommandSlots(10, max_lag=0.5, lag=lambda: late)

    with pytest.raises(web.HTTPServiceUnavailable) as refused, slots.hold():
        pass  # never runs
    late = 0.5
    with slots.hold():
        taken = slots.held

    assert refused.value.reason == "the API is overloaded (800 ms behind); try again shortly"
    assert refused.value.headers["Retry-After"] == "1"
    assert taken == 1  # at the bound, not past it: taken


def test_without_a_bound_on_the_lag_only_the_count_refuses() -> None:
    slots = CommandSlots(1, max_lag=0.0, lag=lambda: 30.0)

    with slots.hold():
        assert slots.held == 1


async def test_the_lag_is_how_late_the_loop_woke() -> None:
    lag = LoopLag(interval=0.01)
    watching = asyncio.create_task(lag.watch())
    await _look(lag)
    _hold_the_loop(0.3)  # the watch's next look is at least this late
    await _look(lag)
    held = lag()
    watching.cancel()

    assert held >= 0.25


async def _look(lag: LoopLag) -> None:
    """Until the watch has looked once more."""
    looks = lag.looks
    while lag.looks == looks:  # noqa: ASYNC110 (the watch has no event to wait on)
        await asyncio.sleep(0.01)


def _hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)

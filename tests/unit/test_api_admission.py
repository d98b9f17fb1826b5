"""The bound on commands in flight (api.admission): past it, 503 at once, with why."""

from __future__ import annotations

import pytest
from aiohttp import web

from api.admission import CommandSlots


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

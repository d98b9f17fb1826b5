"""The change hub's reading of a notification: the projector's shape names
migrations; any other shape (anyone who may connect may NOTIFY) wakes all."""

from __future__ import annotations

import pytest

from api.changes import _changed


def test_the_projectors_payload_names_its_migrations() -> None:
    assert _changed('{"feed":7,"m":{"m-1":3,"m-2":5}}') == ["m-1", "m-2"]


@pytest.mark.parametrize(
    "payload",
    ['{"m":{"*":0}}', '{"m":1}', '{"m":null}', '{"m":["m-1"]}', "[1]", "1", "not json", "{}"],
)
def test_any_other_payload_wakes_everyone(payload: str) -> None:
    assert _changed(payload) is None

"""The read model's memo of specs and their stored text."""

from __future__ import annotations

import json

from projections.store import SpecTexts
from schemas.records import to_plain_spec
from tests.support.read_side import SPEC


def test_one_text_gives_one_spec_and_is_written_back_as_it_was_read() -> None:
    specs, text = SpecTexts(), json.dumps(to_plain_spec(SPEC), sort_keys=True)

    first, again = specs.parse(text), specs.parse(text)

    assert first == SPEC
    assert first is again
    assert specs.text(first) == text


def test_a_spec_never_read_is_written_as_its_json() -> None:
    assert SpecTexts().text(SPEC) == json.dumps(to_plain_spec(SPEC))


def test_it_keeps_at_most_its_size() -> None:
    specs = SpecTexts(size=2)
    texts = [json.dumps({**to_plain_spec(SPEC), "batch_size": n}) for n in range(1, 6)]

    parsed = [specs.parse(t) for t in texts]

    assert len(specs._parsed) <= 2 and len(specs._texts) <= 2
    assert [specs.text(p) for p in parsed] == [json.dumps(to_plain_spec(p)) for p in parsed]

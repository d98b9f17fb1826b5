"""Redrive's pure parts: attempt counting across redrives, the plan, selections."""

from __future__ import annotations

import pytest

from ops.dead_letters import (
    BadSelection,
    DeadLetterRecord,
    Selection,
    parse_before,
    parse_positions,
)
from ops.dead_letters.plan import make_plan
from ops.dead_letters.purge import plan_purge
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letters import (
    Origin,
    attempts_after,
    attempts_of,
    dead_letter_headers,
    original_headers,
    redrive_headers,
)
from streams.kafka.lag import lag_of

DLQ = "migration.commands.dlq"


def letter(
    offset: int, attempts: int = 1, topic: str | None = "migration.commands"
) -> DeadLetterRecord:
    headers = [("trace", b"t")]
    headers += dead_letter_headers(Origin(topic or "", 0, offset), ValueError("x"), "T", attempts)
    if topic is None:
        headers = [(k, v) for k, v in headers if k != "kafka_dlt-original-topic"]
    return DeadLetterRecord(Consumed(DLQ, 0, offset, b"m-1", b"v", list(headers)))


def test_a_redriven_record_that_fails_again_counts_one_attempt_more() -> None:
    first = dead_letter_headers(Origin("migration.commands", 0, 5), ValueError("x"), "T")
    redriven = redrive_headers([("trace", b"t"), *first], Origin(DLQ, 0, 9))
    # today's worker appends fresh headers with attempts 1; a worker that passes
    # attempts_after(...) writes 2: either way the dead letter counts 2.
    again_appended = [*redriven, *dead_letter_headers(Origin("m", 0, 7), ValueError("y"), "T")]
    again_counted = [
        *redriven,
        *dead_letter_headers(Origin("m", 0, 7), ValueError("y"), "T", attempts_after(redriven)),
    ]

    assert attempts_of(first) == 1
    assert attempts_after(redriven) == 2
    assert attempts_of(again_appended) == attempts_of(again_counted) == 2
    assert original_headers(again_counted) == [("trace", b"t")]
    assert dict(redriven)["migrator-redriven-from"] == f"{DLQ}/0/9".encode()


def test_a_plan_sorts_records_into_ready_done_refused_and_unroutable() -> None:
    letters = [letter(0), letter(1), letter(2, attempts=3), letter(3, topic=None), letter(4)]

    plan = make_plan(DLQ, letters, {(0, 1): "done"}, Selection(everything=True), max_attempts=3)

    assert [r.position for r in plan.ready] == [(0, 0), (0, 4)]
    assert plan.already == ((0, 1),)
    assert [r.position for r in plan.refused] == [(0, 2)]
    assert [r.position for r in plan.unroutable] == [(0, 3)]
    assert "has failed 3 times (max attempts 3)" in plan.problems()[0]


def test_a_selection_by_offset_names_what_is_missing_and_limit_cuts() -> None:
    picked = Selection(positions=parse_positions(["0:0", "0:4", "1:7"]), limit=1)

    plan = make_plan(DLQ, [letter(0), letter(4)], {}, picked, max_attempts=5)

    assert [r.position for r in plan.ready] == [(0, 0)]
    assert plan.missing == ((1, 7),)
    assert plan.problems() == [f"no dead letter at 1:7 of {DLQ}"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Selection(),
        lambda: Selection(everything=True, positions=frozenset({(0, 1)})),
        lambda: Selection(everything=True, limit=0),
        lambda: parse_positions(["1-2"]),
        lambda: parse_before(["x:1"]),
    ],
)
def test_bad_selections_say_why(make: object) -> None:
    with pytest.raises(BadSelection):
        make()  # type: ignore[operator]


def test_purge_plans_count_the_records_below_the_cut() -> None:
    letters = [letter(0), letter(1), letter(5)]

    assert plan_purge(DLQ, letters, None).before == {0: 6}
    assert plan_purge(DLQ, letters, None).records == 3
    assert plan_purge(DLQ, letters, {0: 2}).records == 2


def test_lag_counts_from_the_committed_offset_or_from_the_start() -> None:
    assert lag_of({0: 0, 1: 4}, {0: 10, 1: 9}, {0: 7}) == 3 + 5
    assert lag_of({0: 0}, {0: 10}, {0: 12}) == 0

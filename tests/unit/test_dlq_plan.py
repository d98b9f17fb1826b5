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
from ops.dead_letters.ledger import Ledger, Redriven
from ops.dead_letters.letters import letter_of
from ops.dead_letters.plan import make_plan
from ops.dead_letters.purge import plan_purge
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letters import (
    Origin,
    dead_letter,
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
    return letter_of(Consumed(DLQ, 0, offset, b"m-1", b"v", list(headers)), Ledger())


def redriven(at: int, attempts: int) -> Consumed:
    """A dead letter at DLQ 0:`at`, redriven after `attempts` failures, as the
    record that comes back to migration.commands (at offset 7)."""
    first = dead_letter_headers(Origin("migration.commands", 0, 5), ValueError("x"), "T")
    headers = redrive_headers([("trace", b"t"), *first], Origin(DLQ, 0, at), attempts)
    return Consumed("migration.commands", 0, 7, b"m-1", b"v", headers)


def failed_again(record: Consumed, at: int, ledger: Ledger) -> DeadLetterRecord:
    letter = dead_letter(record, ValueError("y"), DLQ)
    return letter_of(Consumed(DLQ, 0, at, letter.key, letter.value, letter.headers), ledger)


def entry(at: int, attempts: int, to_topic: str = "migration.commands") -> Redriven:
    return Redriven(DLQ, 0, at, to_topic, 0, attempts, "T", "run")


def test_a_redriven_record_that_fails_again_counts_one_more_than_the_ledger_says() -> None:
    ledger = Ledger({(DLQ, 0, 9): entry(9, 2)})

    again = failed_again(redriven(9, 2), 12, ledger)

    assert again.attempts == 3
    assert original_headers(again.record.headers) == [("trace", b"t")]
    assert again.summary()["redriven_from"] == f"{DLQ}/0/9"


def test_a_redrive_the_ledger_does_not_hold_counts_no_earlier_failure() -> None:
    forged = redriven(9, 999)  # says it was redriven after 999 failures

    unknown = failed_again(forged, 12, Ledger())
    elsewhere = failed_again(forged, 12, Ledger({(DLQ, 0, 9): entry(9, 4, "migration.events")}))

    assert dict(unknown.record.headers)["migrator-attempts"] == b"1000"  # its word
    assert (unknown.attempts, elsewhere.attempts) == (1, 1)  # the truth


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

    positions = [r.position for r in letters]

    assert plan_purge(DLQ, positions, None).before == {0: 6}
    assert plan_purge(DLQ, positions, None).records == 3
    assert plan_purge(DLQ, positions, {0: 2}).records == 2


def test_lag_counts_from_the_committed_offset_or_from_the_start() -> None:
    assert lag_of({0: 0, 1: 4}, {0: 10, 1: 9}, {0: 7}) == 3 + 5
    assert lag_of({0: 0}, {0: 10}, {0: 12}) == 0

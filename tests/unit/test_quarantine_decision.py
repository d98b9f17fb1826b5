"""The quarantine decision, pure: a gap or a fork parks its one migration at
the event it cannot take, the row keeps the events before it (whatever the
batch boundaries), later events are held, every other migration goes on; a
NUL is escaped only where a refold asks for it."""

from __future__ import annotations

from dataclasses import replace

from domain import MigrationPausing, MigrationState, replay
from domain.events import Event
from projections.fold import Folded, Row, fold_batch
from projections.quarantine import (
    Quarantine,
    escaped_event,
    holds_nul,
    stored_form,
    unstorable,
)
from tests.support.read_side import lifecycle

AT = "2026-01-01T00:00:01.000+00:00"


def pausing(mid: str, sequence: int, reason: str) -> MigrationPausing:
    return MigrationPausing(
        event_id=f"{mid}:{sequence}",
        migration_id=mid,
        sequence=sequence,
        occurred_at=AT,
        causation_id=f"c-{mid}-{sequence}",
        reason=reason,
    )


def one_at_a_time(events: list[Event]) -> Folded:
    """The same events folded as batches of one, each onto the rows before it."""
    rows: dict[str, Row] = {}
    phases: dict = {}
    stored: dict = {}
    for event in events:
        step = fold_batch(rows, phases, [event], stored)
        rows.update(step.rows)
        phases.update(step.phases)
        stored.update({(e.migration_id, e.sequence): stored_form(e) for e in step.history})
    return Folded(rows=rows)


def test_a_gap_quarantines_its_migration_at_the_event_after_it_and_the_others_go_on() -> None:
    bad, good = lifecycle("m-bad"), lifecycle("m-good")
    gapped = [*bad[:3], *bad[5:]]  # 4 and 5 missing

    folded = fold_batch({}, {}, [*gapped, *good])

    row = folded.rows["m-bad"]
    assert row.quarantine == Quarantine("gap: expected sequence 4, got 6", 6)
    assert row.state == replay("m-bad", bad[:3])  # the events before the gap, nothing after
    assert [e.sequence for e in folded.history if e.migration_id == "m-bad"] == [1, 2, 3]
    assert folded.held == bad[5:]
    assert folded.quarantined == ["m-bad"]
    assert folded.rows["m-good"].state == replay("m-good", good)
    assert folded.rows["m-good"].quarantine is None


def test_a_sequence_seen_again_with_other_content_is_a_fork_never_merged() -> None:
    history = lifecycle("m-fork")
    other = replace(history[2], causation_id="c-someone-else")

    folded = fold_batch({}, {}, [*history[:4], other, *history[4:]])

    row = folded.rows["m-fork"]
    assert row.quarantine == Quarantine("fork: sequence 3 seen twice with different events", 3)
    assert row.state == replay("m-fork", history[:4])
    assert folded.held == [other, *history[4:]]
    assert folded.duplicates == []


def test_an_identical_repeat_is_no_fork() -> None:
    history = lifecycle("m-1")

    folded = fold_batch({}, {}, [*history[:4], history[2], *history[4:]])

    assert folded.duplicates == [history[2]]
    assert folded.rows["m-1"].quarantine is None
    assert folded.rows["m-1"].state == replay("m-1", history)


def test_a_repeat_of_a_stored_event_is_judged_against_its_stored_form() -> None:
    history = lifecycle("m-1")
    rows = {"m-1": Row(state=replay("m-1", history[:3]), created_at=AT, updated_at=AT)}
    same = {("m-1", 3): stored_form(history[2])}
    differs = {("m-1", 3): stored_form(replace(history[2], event_id="elsewhere"))}

    repeat = fold_batch(rows, {}, [history[2], history[3]], same)
    fork = fold_batch(rows, {}, [history[2], history[3]], differs)
    unknown = fold_batch(rows, {}, [history[2], history[3]], {})

    assert repeat.duplicates == [history[2]] and repeat.rows["m-1"].state.version == 4
    assert fork.rows["m-1"].quarantine == Quarantine(
        "fork: sequence 3 seen twice with different events", 3
    )
    assert fork.rows["m-1"].state.version == 3 and fork.history == []
    assert unknown.rows["m-1"].quarantine == fork.rows["m-1"].quarantine


def test_a_quarantined_row_is_the_same_whatever_the_batch_boundaries() -> None:
    history = lifecycle("m-1")
    events = [*history[:5], pausing("m-1", 4, "not the 4th event"), *history[5:]]

    whole = fold_batch({}, {}, events)
    singles = one_at_a_time(events)

    assert whole.rows["m-1"] == singles.rows["m-1"]
    assert whole.rows["m-1"].quarantine is not None


def test_a_migration_already_quarantined_holds_every_later_event() -> None:
    history = lifecycle("m-1")
    parked = Row(
        state=replay("m-1", history[:2]),
        created_at=AT,
        updated_at=AT,
        quarantine=Quarantine("gap: expected sequence 3, got 5", 5, AT),
    )

    folded = fold_batch({"m-1": parked}, {}, history[2:])

    assert folded.held == history[2:]
    assert folded.rows == {} and folded.history == [] and folded.quarantined == []


def test_a_first_event_past_sequence_one_or_below_it_is_a_gap() -> None:
    late, early = lifecycle("m-late")[1], replace(lifecycle("m-early")[0], sequence=0)

    folded = fold_batch({}, {}, [late, early])

    assert folded.rows["m-late"].quarantine == Quarantine("gap: expected sequence 1, got 2", 2)
    assert folded.rows["m-early"].quarantine == Quarantine("gap: expected sequence 1, got 0", 0)
    assert folded.rows["m-late"].state == MigrationState(migration_id="m-late")


def test_an_unstorable_reason_names_the_event_and_holds_no_nul() -> None:
    quarantine = unstorable(5, "bad value \x00 here")

    assert quarantine == Quarantine("unstorable event 5: bad value \\u0000 here", 5)


def test_a_nul_is_escaped_only_when_asked_and_the_stored_form_matches_it() -> None:
    event = pausing("m-1", 3, "maint\x00enance")

    escaped = escaped_event(event)

    assert escaped is not None and escaped.reason == "maint\\u0000enance"
    assert escaped_event(pausing("m-1", 3, "maintenance")) is None
    assert holds_nul(stored_form(event)) is False
    assert stored_form(event) == stored_form(escaped)
    assert holds_nul({"k": ["a", {"x\x00": 1}]}) and not holds_nul({"k": ["a", 1, None]})

"""The projector's pure fold of a batch: rows, phase rows, durations, repeats
(gaps and forks: tests/unit/test_quarantine.py)."""

from __future__ import annotations

from dataclasses import replace

from domain import MigrationPaused, MigrationPausing, MigrationSpec, replay
from projections.fold import Row, fold_batch
from projections.quarantine import stored_form
from tests.support.read_side import lifecycle

FLAKY = MigrationSpec(
    source_connection="legacy",
    source_table="flaky_orders",
    source_key="id",
    target_connection="warehouse",
    target_table="orders",
)


def test_a_whole_history_folds_to_the_domains_replay_with_five_completed_phases() -> None:
    history = lifecycle("m-1")

    folded = fold_batch({}, {}, history)

    assert folded.rows["m-1"].state == replay("m-1", history)
    assert {p.status for p in folded.phases.values()} == {"COMPLETED"}
    assert [k[1] for k in folded.phases] == [
        "extract",
        "transform",
        "validate",
        "load",
        "reconcile",
    ]
    assert folded.durations == [("completed", 0.0)] and folded.history == history


def test_a_batch_continues_from_the_stored_rows() -> None:
    history = lifecycle("m-1")
    first = fold_batch({}, {}, history[:5])

    rest = fold_batch(first.rows, first.phases, history[5:])

    assert rest.rows["m-1"].state == replay("m-1", history)
    assert rest.rows["m-1"].created_at == history[0].occurred_at


def test_a_failed_phase_keeps_its_reason_and_checkpoint_and_sets_finished_at() -> None:
    history = lifecycle("m-f", FLAKY)

    folded = fold_batch({}, {}, history)

    transform = folded.phases["m-f", "transform"]
    assert (transform.status, transform.checkpoint) == ("FAILED", "40")
    assert transform.reason is not None and "simulated outage" in transform.reason
    assert folded.rows["m-f"].finished_at == history[-1].occurred_at
    assert [o for o, _ in folded.durations] == ["failed"]


def test_a_pause_marks_the_running_phase_paused() -> None:
    start = lifecycle("m-p")[:2]  # started, extract requested
    pausing = MigrationPausing(
        event_id="m-p:3",
        migration_id="m-p",
        sequence=3,
        occurred_at="2026-01-01T00:00:01.000+00:00",
        causation_id="c-p",
        reason="x",
    )
    paused = MigrationPaused(
        event_id="m-p:4",
        migration_id="m-p",
        sequence=4,
        occurred_at="2026-01-01T00:00:02.000+00:00",
        causation_id="r-1",
        checkpoint="7",
    )

    folded = fold_batch({}, {}, [*start, pausing, paused])

    assert folded.phases["m-p", "extract"].status == "PAUSED"
    assert folded.rows["m-p"].state.status.value == "PAUSED"


def test_an_identical_repeat_is_set_aside() -> None:
    history = lifecycle("m-1")

    repeated = fold_batch({}, {}, [*history[:3], history[1]])

    assert repeated.duplicates == [history[1]]
    assert repeated.rows["m-1"].quarantine is None


def test_a_stored_row_at_a_later_version_makes_earlier_events_repeats() -> None:
    history = lifecycle("m-1")
    stored = {"m-1": Row(state=replace(replay("m-1", history[:4])))}
    payloads = {("m-1", e.sequence): stored_form(e) for e in history[:4]}

    folded = fold_batch(stored, {}, history[:6], payloads)

    assert [e.sequence for e in folded.duplicates] == [1, 2, 3, 4]
    assert [e.sequence for e in folded.history] == [5, 6]

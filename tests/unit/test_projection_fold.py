"""The projector's pure fold of a batch: rows, phase rows, durations, repeats
(gaps and forks: tests/unit/test_quarantine.py)."""

from __future__ import annotations

from dataclasses import replace

from domain import (
    Input,
    MigrationPaused,
    MigrationPausing,
    MigrationSpec,
    PauseMigration,
    PhaseHalted,
    PhaseProgressed,
    PhaseSucceeded,
    ResumeMigration,
    SnapshotRef,
    StartMigration,
    replay,
)
from projections.fold import PhaseRow, Row, fold_batch
from projections.quarantine import stored_form
from tests.support.event_log import timed
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


# --- pace: rates and ETA of a phase's run, from the events' times ---------------

SNAPSHOT = SnapshotRef(id="00000003-1B-1", taken_at="2026-01-01 00:00:00+00", lsn="0/16")


def at(seconds: int) -> str:
    return f"2026-01-01T00:{seconds // 60:02d}:{seconds % 60:02d}.000+00:00"


def progress(rows: int, nbytes: int, run: int = 1, rid: str = "") -> PhaseProgressed:
    return PhaseProgressed(
        result_id=rid or f"p-{run}-{rows}",
        migration_id="m-pace",
        phase="extract",
        run=run,
        rows_done=rows,
        rows_total=100,
        checkpoint=str(rows),
        bytes_done=nbytes,
        snapshot=SNAPSHOT,
    )


START = StartMigration(command_id="c-start", migration_id="m-pace", spec=FLAKY)


def extract_after(*inputs: tuple[int, Input]) -> PhaseRow:
    return fold_batch({}, {}, timed("m-pace", (0, START), *inputs)).phases["m-pace", "extract"]


def test_progress_gives_the_phase_its_bytes_snapshot_rates_and_eta() -> None:
    row = extract_after((10, progress(50, 5000)))

    assert (row.rows_done, row.bytes_done, row.snapshot) == (50, 5000, SNAPSHOT)
    assert (row.rows_per_second, row.bytes_per_second) == (5.0, 500.0)
    assert (row.eta_seconds, row.eta_at) == (10.0, "2026-01-01T00:00:20+00:00")


def test_a_requested_phase_has_no_pace_until_its_first_progress() -> None:
    row = extract_after()

    assert (row.run_started_at, row.rows_per_second, row.eta_seconds) == (at(0), None, None)


def test_a_paused_phase_has_no_eta_and_a_resumed_run_is_measured_from_its_resume() -> None:
    pause = PauseMigration(command_id="c-pause", migration_id="m-pace")
    halt = PhaseHalted(
        result_id="h-1", migration_id="m-pace", phase="extract", run=1, checkpoint="50"
    )
    resume = ResumeMigration(command_id="c-resume", migration_id="m-pace")
    until_paused = [(10, progress(50, 5000)), (12, pause), (15, halt)]

    paused = extract_after(*until_paused)
    resumed = extract_after(*until_paused, (60, resume), (80, progress(90, 9000, run=2)))

    assert (paused.status, paused.eta_seconds, paused.rows_per_second) == ("PAUSED", None, 5.0)
    assert (resumed.run_started_at, resumed.run_rows_from) == (at(60), 50)
    assert (resumed.rows_per_second, resumed.bytes_per_second) == (2.0, 200.0)
    assert resumed.eta_seconds == 5.0


def test_a_copy_started_over_is_measured_again_from_where_it_restarted() -> None:
    row = extract_after((10, progress(50, 5000)), (20, progress(0, 0, rid="again")))

    assert (row.run_started_at, row.run_rows_from, row.rows_per_second) == (at(20), 0, None)


def test_a_completed_phase_keeps_its_bytes_and_snapshot_its_runs_rates_and_eta_zero() -> None:
    done = PhaseSucceeded(
        result_id="d-1", migration_id="m-pace", phase="extract", run=1, rows_done=100
    )

    row = extract_after((10, progress(50, 5000)), (20, done))

    assert (row.status, row.rows_done, row.bytes_done, row.snapshot) == (
        "COMPLETED",
        100,
        5000,
        SNAPSHOT,
    )
    assert (row.rows_per_second, row.bytes_per_second) == (5.0, 250.0)
    assert (row.eta_seconds, row.eta_at) == (0.0, at(20))


def test_a_failed_phase_has_no_eta() -> None:
    history = lifecycle("m-f", FLAKY)

    transform = fold_batch({}, {}, history).phases["m-f", "transform"]

    assert (transform.status, transform.eta_seconds, transform.eta_at) == ("FAILED", None, None)

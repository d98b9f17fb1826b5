"""The pure domain, one story per transition and per rejection: given a
migration in some state, when an input arrives, then these events, this state
and this phase task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from domain import (
    PHASES,
    CancelMigration,
    CancelPhase,
    Command,
    CommandRejected,
    Event,
    Input,
    MigrationCancelled,
    MigrationCompleted,
    MigrationFailed,
    MigrationPaused,
    MigrationPausing,
    MigrationResumed,
    MigrationRetried,
    MigrationSpec,
    MigrationStarted,
    MigrationState,
    PauseMigration,
    PausePhase,
    PhaseCompleted,
    PhaseErrored,
    PhaseFailed,
    PhaseHalted,
    PhaseProgressed,
    PhaseProgressRecorded,
    PhaseRequested,
    PhaseSucceeded,
    PhaseTask,
    ResumeMigration,
    RetryMigration,
    RunPhase,
    SnapshotRef,
    StartMigration,
    Status,
    decide,
    evolve,
    replay,
    task_for,
)

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)
AT = "2026-01-01T00:00:00.000+00:00"
MID = "m-1"


# Inputs. Command ids default to one per type; results answer the state's
# current run and phase unless told otherwise.


def start(command_id: str = "c-start") -> StartMigration:
    return StartMigration(command_id=command_id, migration_id=MID, spec=SPEC)


def pause(command_id: str = "c-pause") -> PauseMigration:
    return PauseMigration(command_id=command_id, migration_id=MID, reason="maintenance")


def resume(command_id: str = "c-resume") -> ResumeMigration:
    return ResumeMigration(command_id=command_id, migration_id=MID)


def cancel(command_id: str = "c-cancel") -> CancelMigration:
    return CancelMigration(command_id=command_id, migration_id=MID, reason="not needed")


def retry(command_id: str = "c-retry") -> RetryMigration:
    return RetryMigration(command_id=command_id, migration_id=MID)


def progressed(
    s: MigrationState, rows: int = 50, checkpoint: str | None = "50", rid: str = "r-progress"
) -> PhaseProgressed:
    assert s.phase is not None
    return PhaseProgressed(
        result_id=rid,
        migration_id=MID,
        phase=s.phase,
        run=s.run,
        rows_done=rows,
        rows_total=100,
        checkpoint=checkpoint,
    )


def succeeded(s: MigrationState, rid: str = "r-done", score: float = 1.0) -> PhaseSucceeded:
    assert s.phase is not None
    return PhaseSucceeded(
        result_id=rid, migration_id=MID, phase=s.phase, run=s.run, rows_done=100, score=score
    )


def halted(s: MigrationState, checkpoint: str | None = "60") -> PhaseHalted:
    assert s.phase is not None
    return PhaseHalted(
        result_id="r-halted", migration_id=MID, phase=s.phase, run=s.run, checkpoint=checkpoint
    )


def errored(s: MigrationState, checkpoint: str | None = "40") -> PhaseErrored:
    assert s.phase is not None
    return PhaseErrored(
        result_id="r-error",
        migration_id=MID,
        phase=s.phase,
        run=s.run,
        reason="source down",
        checkpoint=checkpoint,
    )


# Folding.


def when(state: MigrationState, given: Input) -> tuple[tuple[Event, ...], MigrationState]:
    """The events `given` causes in `state`, and the state after them."""
    events = decide(state, given, AT)
    for event in events:
        state = evolve(state, event)
    return events, state


def then(state: MigrationState, *inputs: Input) -> MigrationState:
    for given in inputs:
        state = when(state, given)[1]
    return state


def tasks(state: MigrationState, events: tuple[Event, ...]) -> list[PhaseTask]:
    """The phase tasks `events` call for, folded onto `state` one by one."""
    found = []
    for event in events:
        state = evolve(state, event)
        task = task_for(state, event)
        if task is not None:
            found.append(task)
    return found


def types(events: tuple[Event, ...]) -> list[type]:
    return [type(e) for e in events]


# Given: a migration in each state.


def unknown() -> MigrationState:
    return MigrationState(migration_id=MID)


def running() -> MigrationState:
    return then(unknown(), start())


def running_with_progress() -> MigrationState:
    s = running()
    return then(s, progressed(s))


def pausing() -> MigrationState:
    return then(running_with_progress(), pause())


def paused() -> MigrationState:
    s = pausing()
    return then(s, halted(s))


def failed() -> MigrationState:
    s = running_with_progress()
    return then(s, errored(s))


def completed() -> MigrationState:
    s = running()
    for n, _ in enumerate(PHASES):
        s = then(s, succeeded(s, rid=f"r-done-{n}"))
    return s


def cancelled() -> MigrationState:
    return then(running(), cancel())


def rejected(state: MigrationState, command: Command) -> CommandRejected:
    """Assert `command` is rejected with one event that changes nothing else."""
    events, after = when(state, command)
    (event,) = events
    assert isinstance(event, CommandRejected)
    assert event.command_type == command.type
    assert event.sequence == state.version + 1
    assert after == replace(
        state, version=state.version + 1, seen=state.seen | {event.causation_id}
    )
    assert tasks(state, events) == []
    return event


# Start.


def test_start_of_a_new_migration_runs_its_first_phase() -> None:
    events, state = when(unknown(), start())

    assert types(events) == [MigrationStarted, PhaseRequested]
    started, requested = events
    assert isinstance(started, MigrationStarted) and started.spec == SPEC
    assert isinstance(requested, PhaseRequested)
    assert (requested.phase, requested.run, requested.checkpoint) == ("extract", 1, None)
    assert (state.status, state.phase, state.run, state.version) == (
        Status.RUNNING,
        "extract",
        1,
        2,
    )
    assert tasks(unknown(), events) == [
        RunPhase(task_id="m-1:2", migration_id=MID, phase="extract", run=1, spec=SPEC)
    ]


def test_start_of_an_existing_migration_is_rejected() -> None:
    event = rejected(running(), start("c-again"))

    assert "already exists" in event.reason


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"on_existing": "merge"}, "invalid spec: on_existing must be one of"),
        ({"mode": "fast"}, "invalid spec: mode must be one of ['full', 'copy-only'], not 'fast'"),
        (
            {"mode": "copy-only", "mapping": {"full_name": "name"}},
            "invalid spec: mapping must be empty when mode is 'copy-only'",
        ),
        (
            {"mode": "copy-only", "rules": ({"rule": "not_null", "column": "email"},)},
            "invalid spec: rules must be empty when mode is 'copy-only'",
        ),
        ({"source_key": "tenant_id, id, tenant_id"}, "invalid spec: source_key names tenant_id"),
        ({"source_key": "id,"}, "invalid spec: source_key must name a column, or several"),
    ],
)
def test_start_with_a_wrong_option_is_rejected_before_any_phase(
    options: dict[str, Any], why: str
) -> None:
    bad = StartMigration(command_id="c-bad", migration_id=MID, spec=replace(SPEC, **options))

    event = rejected(unknown(), bad)

    assert why in event.reason
    assert not then(unknown(), bad).exists


def test_after_a_rejected_start_a_corrected_one_starts_the_migration() -> None:
    bad = StartMigration(command_id="c-bad", migration_id=MID, spec=replace(SPEC, mode="fast"))

    state = then(unknown(), bad, start())

    assert (state.status, state.spec) == (Status.RUNNING, SPEC)


def test_start_with_the_options_set_runs_with_them() -> None:
    spec = replace(SPEC, on_existing="replace", mode="copy-only")

    events, state = when(unknown(), StartMigration(command_id="c", migration_id=MID, spec=spec))

    assert types(events) == [MigrationStarted, PhaseRequested]
    assert state.spec is not None
    assert (state.spec.on_existing, state.spec.mode) == ("replace", "copy-only")


# The happy path.


def test_a_migration_runs_all_five_phases_in_order_to_completed() -> None:
    state = running()
    requested = [(state.phase, state.run)]

    for n, _ in enumerate(PHASES):
        events, state = when(state, succeeded(state, rid=f"r-done-{n}", score=0.5 + n / 10))
        requested += [(e.phase, e.run) for e in events if isinstance(e, PhaseRequested)]

    assert requested == [(phase, run) for run, phase in enumerate(PHASES, start=1)]
    assert types(events) == [PhaseCompleted, MigrationCompleted]
    assert (state.status, state.phase, state.score) == (Status.COMPLETED, "reconcile", 0.9)
    assert state.version == 2 + 2 * len(PHASES)


def test_a_succeeded_phase_requests_the_next_phase_from_scratch() -> None:
    s = running_with_progress()

    events, state = when(s, succeeded(s))

    assert types(events) == [PhaseCompleted, PhaseRequested]
    assert (state.phase, state.run, state.checkpoint) == ("transform", 2, None)
    (task,) = tasks(s, events)
    assert task == RunPhase(
        task_id=events[1].event_id, migration_id=MID, phase="transform", run=2, spec=SPEC
    )


def test_progress_records_rows_and_checkpoint() -> None:
    s = running()

    events, state = when(s, progressed(s, rows=30, checkpoint="k-30"))

    (event,) = events
    assert isinstance(event, PhaseProgressRecorded)
    assert (event.phase, event.rows_done, event.rows_total, event.checkpoint) == (
        "extract",
        30,
        100,
        "k-30",
    )
    assert (state.rows_done, state.rows_total, state.checkpoint) == (30, 100, "k-30")
    assert state.status is Status.RUNNING and tasks(s, events) == []


def test_progress_and_completion_carry_their_bytes_and_snapshot_into_the_events() -> None:
    s = running()
    snapshot = SnapshotRef(id="00000003-1B-1", taken_at="2026-01-01 00:00:00+00", lsn="0/16")

    (recorded,) = when(s, replace(progressed(s), bytes_done=4096, snapshot=snapshot))[0]
    completed, _ = when(s, replace(succeeded(s), bytes_done=8192, snapshot=snapshot))[0]

    assert isinstance(recorded, PhaseProgressRecorded)
    assert (recorded.bytes_done, recorded.snapshot) == (4096, snapshot)
    assert isinstance(completed, PhaseCompleted)
    assert (completed.bytes_done, completed.snapshot) == (8192, snapshot)


def test_progress_without_a_checkpoint_keeps_the_last_one() -> None:
    s = running_with_progress()

    _, state = when(s, progressed(s, rows=70, checkpoint=None, rid="r-progress-2"))

    assert (state.rows_done, state.checkpoint) == (70, "50")


# Pause and resume.


def test_pause_of_a_running_migration_asks_its_phase_to_pause() -> None:
    s = running_with_progress()

    events, state = when(s, pause())

    (event,) = events
    assert isinstance(event, MigrationPausing) and event.reason == "maintenance"
    assert (state.status, state.reason) == (Status.PAUSING, "maintenance")
    assert tasks(s, events) == [
        PausePhase(task_id=event.event_id, migration_id=MID, phase="extract", run=1)
    ]


def test_progress_while_pausing_is_still_recorded() -> None:
    s = pausing()

    events, state = when(s, progressed(s, rows=55, checkpoint="55", rid="r-late"))

    assert types(events) == [PhaseProgressRecorded]
    assert (state.status, state.checkpoint) == (Status.PAUSING, "55")


def test_a_halted_phase_pauses_the_migration_at_its_checkpoint() -> None:
    s = pausing()

    events, state = when(s, halted(s, checkpoint="60"))

    (event,) = events
    assert isinstance(event, MigrationPaused) and event.checkpoint == "60"
    assert (state.status, state.phase, state.checkpoint) == (Status.PAUSED, "extract", "60")
    assert tasks(s, events) == []


def test_a_halted_phase_without_a_checkpoint_keeps_the_last_progress_checkpoint() -> None:
    s = pausing()

    _, state = when(s, halted(s, checkpoint=None))

    assert (state.status, state.checkpoint) == (Status.PAUSED, "50")


def test_a_phase_halted_while_running_is_ignored() -> None:
    s = running_with_progress()

    assert decide(s, halted(s), AT) == ()


def test_a_phase_that_succeeds_while_pausing_pauses_between_phases() -> None:
    s = pausing()

    events, state = when(s, succeeded(s))

    assert types(events) == [PhaseCompleted, MigrationPaused]
    assert (state.status, state.phase, state.checkpoint) == (Status.PAUSED, "transform", None)
    assert tasks(s, events) == []


def test_resume_between_phases_requests_the_next_phase() -> None:
    s = pausing()
    s = then(s, succeeded(s))

    events, state = when(s, resume())

    assert types(events) == [MigrationResumed, PhaseRequested]
    requested = events[1]
    assert isinstance(requested, PhaseRequested)
    assert (requested.phase, requested.run, requested.checkpoint) == ("transform", 2, None)
    assert (state.status, state.phase, state.run) == (Status.RUNNING, "transform", 2)
    assert tasks(s, events) == [
        RunPhase(task_id=requested.event_id, migration_id=MID, phase="transform", run=2, spec=SPEC)
    ]


def test_resume_reruns_the_paused_phase_from_its_checkpoint() -> None:
    s = paused()

    events, state = when(s, resume())

    assert types(events) == [MigrationResumed, PhaseRequested]
    requested = events[1]
    assert isinstance(requested, PhaseRequested)
    assert (requested.phase, requested.run, requested.checkpoint) == ("extract", 2, "60")
    assert (state.status, state.run, state.checkpoint, state.reason) == (
        Status.RUNNING,
        2,
        "60",
        None,
    )
    assert state.rows_done == 50, "the rows done before the pause still count"
    assert tasks(s, events) == [
        RunPhase(
            task_id=requested.event_id,
            migration_id=MID,
            phase="extract",
            run=2,
            spec=SPEC,
            checkpoint="60",
        )
    ]


def test_a_second_concurrent_resume_is_rejected() -> None:
    s = then(paused(), resume())

    event = rejected(s, resume("c-resume-2"))

    assert "only a PAUSED migration can resume" in event.reason and "RUNNING" in event.reason


def test_resume_while_still_pausing_is_rejected() -> None:
    event = rejected(pausing(), resume())

    assert "PAUSING" in event.reason


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (completed, "only a RUNNING migration can pause; it is COMPLETED"),
        (paused, "only a RUNNING migration can pause; it is PAUSED"),
        (pausing, "only a RUNNING migration can pause; it is PAUSING"),
        (failed, "only a RUNNING migration can pause; it is FAILED"),
        (cancelled, "only a RUNNING migration can pause; it is CANCELLED"),
        (unknown, "no migration m-1"),
    ],
)
def test_pause_outside_running_is_rejected(given: Callable[[], MigrationState], why: str) -> None:
    event = rejected(given(), pause("c-pause-2"))

    assert event.reason == why


@pytest.mark.parametrize("given", [running, pausing, completed, failed, cancelled, unknown])
def test_resume_outside_paused_is_rejected(given: Callable[[], MigrationState]) -> None:
    rejected(given(), resume())


# Cancel.


@pytest.mark.parametrize("given", [running, pausing, paused, failed])
def test_cancel_of_an_unfinished_migration_cancels_it_and_its_phase(
    given: Callable[[], MigrationState],
) -> None:
    s = given()

    events, state = when(s, cancel())

    (event,) = events
    assert isinstance(event, MigrationCancelled) and event.reason == "not needed"
    assert state.status is Status.CANCELLED
    assert tasks(s, events) == [
        CancelPhase(task_id=event.event_id, migration_id=MID, run=s.run, spec=s.spec)
    ]


@pytest.mark.parametrize("given", [completed, cancelled])
def test_cancel_of_a_finished_migration_is_rejected(
    given: Callable[[], MigrationState],
) -> None:
    event = rejected(given(), cancel("c-cancel-2"))

    assert "a finished migration cannot be cancelled" in event.reason


def test_cancel_of_an_unknown_migration_is_rejected() -> None:
    assert rejected(unknown(), cancel()).reason == "no migration m-1"


# Failure and retry.


def test_an_errored_phase_fails_the_phase_and_the_migration() -> None:
    s = running_with_progress()

    events, state = when(s, errored(s, checkpoint="40"))

    assert types(events) == [PhaseFailed, MigrationFailed]
    phase_failed, migration_failed = events
    assert isinstance(phase_failed, PhaseFailed)
    assert (phase_failed.phase, phase_failed.reason, phase_failed.checkpoint) == (
        "extract",
        "source down",
        "40",
    )
    assert isinstance(migration_failed, MigrationFailed)
    assert migration_failed.reason == "extract failed: source down"
    assert (state.status, state.phase, state.checkpoint) == (Status.FAILED, "extract", "40")
    assert state.reason == "extract failed: source down"
    assert tasks(s, events) == []


def test_retry_reruns_the_failed_phase_from_its_checkpoint() -> None:
    s = failed()

    events, state = when(s, retry())

    assert types(events) == [MigrationRetried, PhaseRequested]
    requested = events[1]
    assert isinstance(requested, PhaseRequested)
    assert (requested.phase, requested.run, requested.checkpoint) == ("extract", 2, "40")
    assert (state.status, state.run, state.reason) == (Status.RUNNING, 2, None)
    assert tasks(s, events) == [
        RunPhase(
            task_id=requested.event_id,
            migration_id=MID,
            phase="extract",
            run=2,
            spec=SPEC,
            checkpoint="40",
        )
    ]


def test_retry_after_an_error_without_checkpoint_resumes_from_the_last_progress() -> None:
    s = running_with_progress()
    s = then(s, errored(s, checkpoint=None))

    events, _ = when(s, retry())

    assert isinstance(events[1], PhaseRequested) and events[1].checkpoint == "50"


@pytest.mark.parametrize("given", [running, pausing, paused, completed, cancelled, unknown])
def test_retry_outside_failed_is_rejected(given: Callable[[], MigrationState]) -> None:
    event = rejected(given(), retry())

    assert event.reason.startswith(("only a FAILED migration can retry", "no migration"))


# Stale results: of another run or phase, or after the migration stopped.


def old_run(s: MigrationState) -> Input:
    return replace(progressed(s), run=s.run - 1)


def wrong_phase(s: MigrationState) -> Input:
    return replace(succeeded(s), phase="load")


@pytest.mark.parametrize(
    ("given", "result"),
    [
        (lambda: then(paused(), resume()), old_run),
        (lambda: then(failed(), retry()), lambda s: replace(succeeded(s), run=1)),
        (running, wrong_phase),
        (running, lambda s: replace(succeeded(s), run=s.run + 1)),
        (cancelled, succeeded),
        (paused, progressed),
        (paused, halted),
        (failed, succeeded),
        (completed, lambda s: replace(succeeded(s), result_id="r-new")),
    ],
    ids=[
        "old run after resume",
        "old run after retry",
        "wrong phase",
        "future run",
        "after cancel",
        "progress after pause",
        "halt after pause",
        "after failure",
        "after complete",
    ],
)
def test_a_stale_result_is_ignored(
    given: Callable[[], MigrationState], result: Callable[[MigrationState], Input]
) -> None:
    s = given()

    assert decide(s, result(s), AT) == ()


def test_a_result_before_the_start_is_ignored() -> None:
    result = PhaseSucceeded(result_id="r-1", migration_id=MID, phase="extract", run=0, rows_done=1)

    assert decide(unknown(), result, AT) == ()


# Idempotency.


def test_a_repeated_command_has_no_second_effect() -> None:
    s = running()

    assert decide(s, start(), AT) == ()


def test_a_command_id_seen_before_is_ignored_whatever_the_command() -> None:
    s = then(running(), pause("c-1"))

    assert decide(s, resume("c-1"), AT) == ()
    assert decide(s, cancel("c-1"), AT) == ()


def test_a_repeated_rejected_command_is_rejected_only_once() -> None:
    s = then(running(), resume())

    assert decide(s, resume(), AT) == ()


def test_a_repeated_result_within_a_run_is_ignored() -> None:
    s = running()
    result = progressed(s, rows=10, checkpoint="10", rid="r-1")
    s = then(s, result)

    assert decide(s, result, AT) == ()
    assert decide(s, replace(result, rows_done=20), AT) == ()


def test_a_result_id_is_remembered_for_its_run_only() -> None:
    s = then(paused(), resume())  # run 1 reported progress as "r-progress"

    events, _ = when(s, progressed(s, rid="r-progress"))

    assert types(events) == [PhaseProgressRecorded]


def test_result_ids_are_not_taken_for_command_ids() -> None:
    s = running_with_progress()
    s = then(s, errored(s))

    events, state = when(s, retry(command_id="r-error"))

    assert types(events) == [MigrationRetried, PhaseRequested]
    assert "r-error" in state.seen


# The envelope.


def test_events_have_deterministic_ids_and_name_their_cause() -> None:
    s = running()
    events, s = when(s, progressed(s, rid="r-7"))
    more, _ = when(s, pause("c-9"))

    assert [(e.event_id, e.sequence, e.causation_id) for e in events + more] == [
        ("m-1:3", 3, "r-7"),
        ("m-1:4", 4, "c-9"),
    ]
    assert all(e.migration_id == MID and e.occurred_at == AT for e in events + more)
    first, second = decide(unknown(), start("c-1"), AT)
    assert [(e.event_id, e.causation_id) for e in (first, second)] == [
        ("m-1:1", "c-1"),
        ("m-1:2", "c-1"),
    ]


def test_deciding_twice_gives_the_same_events() -> None:
    s = running_with_progress()

    assert decide(s, pause(), AT) == decide(s, pause(), AT)


def test_evolve_refuses_a_duplicate_sequence() -> None:
    first, _ = decide(unknown(), start(), AT)
    state = evolve(unknown(), first)

    with pytest.raises(ValueError, match="sequence 1 after version 1"):
        evolve(state, first)


def test_evolve_refuses_a_gap() -> None:
    _, second = decide(unknown(), start(), AT)

    with pytest.raises(ValueError, match="sequence 2 after version 0"):
        evolve(unknown(), second)


def test_replay_rebuilds_the_state_from_the_events() -> None:
    steps: list[Callable[[MigrationState], Input]] = [
        lambda s: start(),
        progressed,
        lambda s: pause(),
        halted,
        lambda s: resume(),
        succeeded,
    ]
    state, log = unknown(), list[Event]()
    for step in steps:
        events, state = when(state, step(state))
        log += events

    assert replay(MID, log) == state
    assert [e.sequence for e in log] == list(range(1, len(log) + 1))
    assert (state.status, state.phase, state.run) == (Status.RUNNING, "transform", 3)


def test_a_phase_that_reported_no_progress_completes_at_done_equal_total() -> None:
    s = running()

    events, _ = when(s, succeeded(s))
    after = evolve(s, events[0])

    assert isinstance(events[0], PhaseCompleted)
    assert after.rows_done == after.rows_total == 100

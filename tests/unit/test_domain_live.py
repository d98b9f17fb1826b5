"""Live migrations in the pure domain (domain.live), one story per transition
and per rejection: a cdc migration syncs after reconcile, reports its lag, cuts
over when asked, can abort the cutover, and pauses on a schema drift."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain import (
    PHASES,
    AbortCutover,
    CancelMigration,
    CancelPhase,
    Command,
    CommandRejected,
    CutoverAborted,
    CutoverCompleted,
    CutoverMigration,
    CutoverOptions,
    CutoverRequested,
    CutoverResult,
    ErrorKind,
    Event,
    Input,
    MigrationCancelled,
    MigrationCompleted,
    MigrationFailed,
    MigrationPaused,
    MigrationPausing,
    MigrationResumed,
    MigrationSpec,
    MigrationState,
    PauseMigration,
    PausePhase,
    Phase,
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
    SchemaDrifted,
    StartMigration,
    Status,
    decide,
    evolve,
    next_phase,
    phase_after,
    replay,
    task_for,
)
from domain.live import slot_name

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
    cdc=True,
)
AT = "2026-01-01T00:00:00.000+00:00"
MID = "m-live"
RESULT = CutoverResult(
    position="0/3000060",
    source_rows=100,
    target_rows=100,
    source_checksum="abc",
    target_checksum="abc",
    changes_applied=12,
    rows_verified=7,
    sequences_synced=1,
    frozen=True,
)


# Inputs: results answer the state's current run and phase.


def cutover(
    command_id: str = "c-cutover",
    max_lag_bytes: int | None = 1024,
    max_lag_seconds: float | None = 2.0,
    freeze: bool = True,
) -> CutoverMigration:
    return CutoverMigration(
        command_id=command_id,
        migration_id=MID,
        max_lag_bytes=max_lag_bytes,
        max_lag_seconds=max_lag_seconds,
        freeze=freeze,
    )


def abort(command_id: str = "c-abort") -> AbortCutover:
    return AbortCutover(command_id=command_id, migration_id=MID, reason="load spike")


def lagging(s: MigrationState, lag: int = 4096, rid: str = "r-lag") -> PhaseProgressed:
    assert s.phase is not None
    return PhaseProgressed(
        result_id=rid,
        migration_id=MID,
        phase=s.phase,
        run=s.run,
        rows_done=12,
        rows_total=0,
        checkpoint="0/3000000",
        lag_bytes=lag,
        lag_seconds=0.5,
        position="0/3000000",
    )


def succeeded(s: MigrationState, rid: str, result: CutoverResult | None = None) -> PhaseSucceeded:
    assert s.phase is not None
    return PhaseSucceeded(
        result_id=rid, migration_id=MID, phase=s.phase, run=s.run, rows_done=100, cutover=result
    )


def errored(s: MigrationState, kind: str | None, reason: str) -> PhaseErrored:
    assert s.phase is not None
    return PhaseErrored(
        result_id="r-error",
        migration_id=MID,
        phase=s.phase,
        run=s.run,
        reason=reason,
        checkpoint="0/3000010",
        kind=kind,
    )


def halted(s: MigrationState) -> PhaseHalted:
    assert s.phase is not None
    return PhaseHalted(
        result_id="r-halted", migration_id=MID, phase=s.phase, run=s.run, checkpoint="0/3000020"
    )


DRIFT = "column note added to public.customers"


# Folding.


def when(state: MigrationState, given: Input) -> tuple[tuple[Event, ...], MigrationState]:
    events = decide(state, given, AT)
    for event in events:
        state = evolve(state, event)
    return events, state


def then(state: MigrationState, *inputs: Input) -> MigrationState:
    for given in inputs:
        state = when(state, given)[1]
    return state


def tasks(state: MigrationState, events: tuple[Event, ...]) -> list[PhaseTask]:
    found = []
    for event in events:
        state = evolve(state, event)
        task = task_for(state, event)
        if task is not None:
            found.append(task)
    return found


def types(events: tuple[Event, ...]) -> list[type]:
    return [type(e) for e in events]


def rejected(state: MigrationState, command: Command) -> CommandRejected:
    events, after = when(state, command)
    (event,) = events
    assert isinstance(event, CommandRejected)
    assert event.command_type == command.type
    assert after == replace(
        state, version=state.version + 1, seen=state.seen | {event.causation_id}
    )
    return event


# Given: a cdc migration in each state.


def running(spec: MigrationSpec = SPEC) -> MigrationState:
    return then(
        MigrationState(migration_id=MID),
        StartMigration(command_id="c-start", migration_id=MID, spec=spec),
    )


def loaded_but_reconcile() -> MigrationState:
    s = running()
    for n in range(len(PHASES) - 1):
        s = then(s, succeeded(s, rid=f"r-done-{n}"))
    return s


def syncing() -> MigrationState:
    s = loaded_but_reconcile()
    return then(s, succeeded(s, rid="r-reconciled"))


def syncing_with_lag() -> MigrationState:
    s = syncing()
    return then(s, lagging(s))


def cutting_over() -> MigrationState:
    return then(syncing_with_lag(), cutover())


def drifted() -> MigrationState:
    s = syncing_with_lag()
    return then(s, errored(s, ErrorKind.SCHEMA_DRIFTED, DRIFT))


# Phases.


def test_the_live_phases_are_not_in_the_sequence_and_have_no_next_phase() -> None:
    assert Phase.SYNC not in PHASES and Phase.CUTOVER not in PHASES
    assert (next_phase("sync"), next_phase("cutover")) == (None, None)
    assert phase_after(SPEC, "reconcile") is Phase.SYNC
    assert phase_after(replace(SPEC, cdc=False), "reconcile") is None
    assert phase_after(SPEC, "load") is Phase.RECONCILE


# Into sync.


def test_a_cdc_migration_syncs_after_reconcile_instead_of_completing() -> None:
    s = loaded_but_reconcile()

    events, state = when(s, succeeded(s, rid="r-reconciled"))

    assert types(events) == [PhaseCompleted, PhaseRequested]
    assert (state.status, state.phase, state.run) == (Status.SYNCING, Phase.SYNC, s.run + 1)
    assert tasks(s, events) == [
        RunPhase(
            task_id=events[1].event_id, migration_id=MID, phase="sync", run=s.run + 1, spec=SPEC
        )
    ]


def test_a_migration_without_cdc_still_completes_after_reconcile() -> None:
    s = running(replace(SPEC, cdc=False))
    for n in range(len(PHASES)):
        s = then(s, succeeded(s, rid=f"r-{n}"))

    assert s.status is Status.COMPLETED


def test_reconcile_done_while_pausing_pauses_before_sync_and_resume_syncs() -> None:
    s = then(loaded_but_reconcile(), PauseMigration(command_id="c-p", migration_id=MID))

    events, state = when(s, succeeded(s, rid="r-reconciled"))

    assert types(events) == [PhaseCompleted, MigrationPaused]
    assert (state.status, state.phase) == (Status.PAUSED, Phase.SYNC)
    resumed = then(state, ResumeMigration(command_id="c-r", migration_id=MID))
    assert (resumed.status, resumed.phase) == (Status.SYNCING, Phase.SYNC)


def test_sync_progress_records_the_lag_and_position() -> None:
    s = syncing()

    events, state = when(s, lagging(s, lag=8192))

    (event,) = events
    assert isinstance(event, PhaseProgressRecorded)
    assert (event.lag_bytes, event.lag_seconds, event.position) == (8192, 0.5, "0/3000000")
    assert (state.lag_bytes, state.lag_seconds, state.position) == (8192, 0.5, "0/3000000")
    assert state.status is Status.SYNCING


def test_progress_without_lag_keeps_the_last_lag() -> None:
    s = syncing_with_lag()
    plain = replace(lagging(s, rid="r-plain"), lag_bytes=None, lag_seconds=None, position=None)

    state = then(s, plain)

    assert (state.lag_bytes, state.lag_seconds, state.position) == (4096, 0.5, "0/3000000")


def test_a_sync_run_that_reports_success_causes_nothing() -> None:
    s = syncing_with_lag()

    assert decide(s, succeeded(s, rid="r-sync-done"), AT) == ()


# Cutover.


def test_cutover_of_a_syncing_migration_replaces_the_sync_run() -> None:
    s = syncing_with_lag()

    events, state = when(s, cutover())

    assert types(events) == [CutoverRequested, PhaseRequested]
    asked, requested = events
    assert isinstance(asked, CutoverRequested)
    assert (asked.max_lag_bytes, asked.max_lag_seconds, asked.freeze) == (1024, 2.0, True)
    assert isinstance(requested, PhaseRequested)
    assert (requested.phase, requested.run) == ("cutover", s.run + 1)
    assert (state.status, state.phase) == (Status.CUTTING_OVER, Phase.CUTOVER)
    options = CutoverOptions(max_lag_bytes=1024, max_lag_seconds=2.0, freeze=True)
    assert state.cutover == options
    (task,) = tasks(s, events)
    assert isinstance(task, RunPhase)
    assert (task.phase, task.run, task.cutover) == ("cutover", s.run + 1, options)


def test_cutover_without_bounds_carries_none() -> None:
    s = syncing()

    state = then(s, cutover(max_lag_bytes=None, max_lag_seconds=None, freeze=False))

    assert state.cutover == CutoverOptions()


@pytest.mark.parametrize(
    "given",
    [running, loaded_but_reconcile, cutting_over, drifted],
    ids=lambda f: f.__name__,
)
def test_cutover_of_a_migration_that_is_not_syncing_is_rejected(given: object) -> None:
    assert callable(given)
    state: MigrationState = given()

    event = rejected(state, cutover("c-cutover-again"))

    assert f"only a SYNCING migration can cut over; it is {state.status}" == event.reason


def test_cutover_of_an_unknown_migration_is_rejected() -> None:
    event = rejected(MigrationState(migration_id=MID), cutover())

    assert event.reason == f"no migration {MID}"


@pytest.mark.parametrize(
    ("bounds", "why"),
    [
        ({"max_lag_bytes": -1}, "max_lag_bytes must be 0 or more, not -1"),
        ({"max_lag_seconds": -0.5}, "max_lag_seconds must be a finite number, 0 or more"),
        ({"max_lag_seconds": float("nan")}, "max_lag_seconds must be a finite number"),
        ({"max_lag_seconds": float("inf")}, "max_lag_seconds must be a finite number"),
    ],
)
def test_cutover_with_a_wrong_bound_is_rejected(bounds: dict[str, float], why: str) -> None:
    event = rejected(syncing(), cutover(**bounds))  # type: ignore[arg-type]

    assert event.reason.startswith("invalid cutover: ")
    assert why in event.reason


def test_a_cutover_that_succeeds_completes_the_migration_with_its_result() -> None:
    s = cutting_over()

    events, state = when(s, succeeded(s, rid="r-cut", result=RESULT))

    assert types(events) == [PhaseCompleted, CutoverCompleted, MigrationCompleted]
    done = events[1]
    assert isinstance(done, CutoverCompleted) and done.result == RESULT
    assert (state.status, state.position, state.lag_bytes) == (
        Status.COMPLETED,
        "0/3000060",
        0,
    )
    assert tasks(s, events) == []


def test_a_cutover_success_without_its_result_fails_the_migration() -> None:
    s = cutting_over()

    events, state = when(s, succeeded(s, rid="r-cut"))

    assert types(events) == [PhaseFailed, MigrationFailed]
    assert state.status is Status.FAILED
    assert state.reason is not None and "without its result" in state.reason


def test_a_retried_cutover_runs_again_with_its_options() -> None:
    s = cutting_over()
    s = then(s, errored(s, None, "target down"))

    events, state = when(s, RetryMigration(command_id="c-retry", migration_id=MID))

    (task,) = tasks(s, events)
    assert isinstance(task, RunPhase)
    assert (task.phase, task.cutover) == ("cutover", s.cutover)
    assert state.status is Status.CUTTING_OVER


def test_a_result_of_the_replaced_sync_run_is_stale() -> None:
    s = syncing_with_lag()
    old = lagging(s, rid="r-old")

    assert decide(then(s, cutover()), old, AT) == ()


# Abort.


def test_abort_of_a_cutover_syncs_again_with_a_fresh_run() -> None:
    s = cutting_over()

    events, state = when(s, abort())

    assert types(events) == [CutoverAborted, PhaseRequested]
    assert isinstance(events[0], CutoverAborted) and events[0].reason == "load spike"
    assert (state.status, state.phase, state.run) == (Status.SYNCING, Phase.SYNC, s.run + 1)
    (task,) = tasks(s, events)
    assert isinstance(task, RunPhase)
    assert (task.phase, task.run, task.cutover, task.checkpoint) == (
        "sync",
        s.run + 1,
        None,
        s.checkpoint,
    )


def test_after_an_abort_a_cutover_can_be_asked_again() -> None:
    state = then(cutting_over(), abort(), cutover("c-cutover-2", max_lag_bytes=0))

    assert state.status is Status.CUTTING_OVER
    assert state.cutover is not None and state.cutover.max_lag_bytes == 0


def test_a_result_of_the_aborted_cutover_run_is_stale() -> None:
    s = cutting_over()
    late = succeeded(s, rid="r-cut", result=RESULT)

    assert decide(then(s, abort()), late, AT) == ()


@pytest.mark.parametrize("given", [running, syncing, drifted], ids=lambda f: f.__name__)
def test_abort_when_no_cutover_runs_is_rejected(given: object) -> None:
    assert callable(given)
    state: MigrationState = given()

    event = rejected(state, abort())

    assert event.reason.startswith("only a migration that is cutting over can abort its cutover")


# Schema drift.


def test_a_schema_drift_in_sync_pauses_the_migration_with_the_change() -> None:
    s = syncing_with_lag()

    events, state = when(s, errored(s, ErrorKind.SCHEMA_DRIFTED, DRIFT))

    (event,) = events
    assert isinstance(event, SchemaDrifted)
    assert (event.phase, event.reason, event.checkpoint) == ("sync", DRIFT, "0/3000010")
    assert (state.status, state.reason, state.phase) == (Status.PAUSED, DRIFT, Phase.SYNC)
    assert state.checkpoint == "0/3000010"
    assert tasks(s, events) == []


def test_a_schema_drift_during_cutover_pauses_it_and_resume_syncs() -> None:
    s = cutting_over()

    drifted_state = then(s, errored(s, "schema_drifted", DRIFT))
    events, resumed = when(drifted_state, ResumeMigration(command_id="c-r", migration_id=MID))

    assert drifted_state.status is Status.PAUSED
    assert types(events) == [MigrationResumed, PhaseRequested]
    assert (resumed.status, resumed.phase, resumed.reason) == (Status.SYNCING, Phase.SYNC, None)


def test_an_error_of_another_kind_fails_the_migration() -> None:
    s = syncing_with_lag()

    events, state = when(s, errored(s, "out_of_disk", "no space left"))

    assert types(events) == [PhaseFailed, MigrationFailed]
    assert state.status is Status.FAILED


# Pause and cancel while live.


def test_a_syncing_migration_pauses_and_resumes_its_sync() -> None:
    s = syncing_with_lag()

    events, pausing = when(s, PauseMigration(command_id="c-p", migration_id=MID))
    paused = then(pausing, halted(pausing))

    assert types(events) == [MigrationPausing]
    assert tasks(s, events) == [
        PausePhase(task_id=events[0].event_id, migration_id=MID, phase="sync", run=s.run)
    ]
    assert (paused.status, paused.checkpoint) == (Status.PAUSED, "0/3000020")
    resumed = then(paused, ResumeMigration(command_id="c-r", migration_id=MID))
    assert (resumed.status, resumed.phase, resumed.checkpoint) == (
        Status.SYNCING,
        Phase.SYNC,
        "0/3000020",
    )


def test_pause_while_cutting_over_is_rejected() -> None:
    event = rejected(cutting_over(), PauseMigration(command_id="c-p", migration_id=MID))

    assert event.reason == "only a RUNNING or SYNCING migration can pause; it is CUTTING_OVER"


@pytest.mark.parametrize("given", [syncing, cutting_over], ids=lambda f: f.__name__)
def test_cancel_of_a_live_migration_reaches_the_worker(given: object) -> None:
    assert callable(given)
    s: MigrationState = given()

    events, state = when(s, CancelMigration(command_id="c-x", migration_id=MID, reason="no"))

    assert types(events) == [MigrationCancelled]
    assert state.status is Status.CANCELLED
    assert tasks(s, events) == [
        CancelPhase(task_id=events[0].event_id, migration_id=MID, run=s.run, spec=SPEC)
    ]


# Repeats and replay.


def test_a_repeated_cutover_or_abort_causes_nothing() -> None:
    s = then(syncing(), cutover())

    assert decide(s, cutover(), AT) == ()
    assert decide(then(s, abort()), abort(), AT) == ()


def test_replay_of_a_live_history_rebuilds_the_state() -> None:
    state, history = MigrationState(migration_id=MID), []
    inputs: list[Input] = [StartMigration(command_id="c-start", migration_id=MID, spec=SPEC)]
    for step in range(len(PHASES) + 6):
        for given in inputs:
            events, state = when(state, given)
            history += events
        inputs = [_next_live_input(state, step)]

    assert state.status is Status.COMPLETED
    assert replay(MID, history) == state


def _next_live_input(s: MigrationState, step: int) -> Input:
    """Load, sync with lag, cut over, abort, cut over again, complete."""
    if s.status is Status.RUNNING:
        return succeeded(s, rid=f"r-{step}")
    if s.status is Status.SYNCING and s.lag_bytes is None:
        return lagging(s)
    if s.status is Status.SYNCING:
        return cutover(f"c-cutover-{step}")
    if s.cutover is not None and s.run == len(PHASES) + 2:
        return abort()
    return succeeded(s, rid=f"r-{step}", result=RESULT)


@pytest.mark.parametrize("mid", ["m-1", "M_Upper.Case:7", "m-" + "x" * 200, "ünï-cødé"])
def test_a_slot_is_named_as_the_data_plane_names_it(mid: str) -> None:
    from streams.dataplane.cdc.slots import slot_name as data_planes

    assert slot_name(mid) == data_planes(mid)
    assert len(slot_name(mid)) <= 63 and slot_name(mid).startswith("migrator_")

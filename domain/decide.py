"""decide: the events an input (command or phase result) causes in a state.

A command that does not fit the state, or a start whose spec's options or
source key are wrong (domain.options, domain.spec: checked here, before any
phase runs), is answered by
`CommandRejected` with the reason; a command or result seen before causes
nothing; a stale result (of another run or phase, or after the migration
stopped) causes nothing.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, assert_never

from domain import events as ev
from domain.commands import (
    AbortCutover,
    CancelMigration,
    Command,
    CutoverMigration,
    DiffFigures,
    DiffMigration,
    DiffTaken,
    Input,
    PauseMigration,
    PhaseErrored,
    PhaseHalted,
    PhaseProgressed,
    PhaseResult,
    PhaseSucceeded,
    RepairMigration,
    ResumeMigration,
    RetryMigration,
    StartMigration,
)
from domain.errors import SpecError
from domain.events import Event
from domain.live import ErrorKind, cutover_problem, options_of
from domain.options import parse_options
from domain.retention import retired_reason
from domain.spec import parse_source_key
from domain.state import CHECKS, PHASES, TERMINAL, MigrationState, Phase, Status, phase_after


def event_id(migration_id: str, sequence: int) -> str:
    """Event ids are deterministic, so a replay reproduces them."""
    return f"{migration_id}:{sequence}"


class Emitter:
    """Builds events with the envelope filled in and gapless sequences."""

    def __init__(self, state: MigrationState, causation_id: str, at: str) -> None:
        self.state, self.causation_id, self.at = state, causation_id, at
        self.events: list[Event] = []

    def __call__(self, cls: type[Event], **payload: Any) -> Emitter:
        seq = self.state.version + len(self.events) + 1
        mid = self.state.migration_id
        self.events.append(
            cls(
                event_id=event_id(mid, seq),
                migration_id=mid,
                sequence=seq,
                occurred_at=self.at,
                causation_id=self.causation_id,
                **payload,
            )
        )
        return self

    def reject(self, command: Command, reason: str) -> Emitter:
        return self(ev.CommandRejected, command_type=command.type, reason=reason)


def decide(state: MigrationState, given: Input, at: str) -> tuple[Event, ...]:
    """Return the events `given` causes in `state`, stamped with time `at`."""
    if isinstance(given, PhaseResult):
        if given.result_id in state.seen_results or _stale(state, given):
            return ()
        emit = Emitter(state, given.result_id, at)
        _on_result(state, given, emit)
    else:
        if given.command_id in state.seen:
            return ()
        emit = Emitter(state, given.command_id, at)
        if state.retired:
            emit.reject(given, retired_reason(state.migration_id))
        else:
            _on_command(state, given, emit)
    return tuple(emit.events)


def _on_command(state: MigrationState, cmd: Command, emit: Emitter) -> None:
    match cmd:
        case StartMigration():
            _start(state, cmd, emit)
        case PauseMigration():
            _pause(state, cmd, emit)
        case ResumeMigration():
            _resume(state, cmd, emit)
        case RetryMigration():
            _retry(state, cmd, emit)
        case CancelMigration():
            _cancel(state, cmd, emit)
        case CutoverMigration():
            _cutover(state, cmd, emit)
        case AbortCutover():
            _abort_cutover(state, cmd, emit)
        case DiffMigration():
            _diff(state, cmd, emit)
        case RepairMigration():
            _repair(state, cmd, emit)
        case _:
            assert_never(cmd)


def _on_result(state: MigrationState, res: PhaseResult, emit: Emitter) -> None:
    match res:
        case PhaseProgressed():
            _progressed(state, res, emit)
        case PhaseSucceeded():
            _succeeded(state, res, emit)
        case PhaseHalted():
            _halted(state, res, emit)
        case PhaseErrored():
            _errored(state, res, emit)
        case DiffTaken():
            _diff_taken(res, emit)
        case _:
            assert_never(res)


def _start(state: MigrationState, cmd: StartMigration, emit: Emitter) -> None:
    if state.exists:
        emit.reject(cmd, f"migration {state.migration_id} already exists ({state.status})")
        return
    spec = cmd.spec
    try:
        parse_options(spec.on_existing, spec.mode, spec.mapping, spec.rules)
        parse_source_key(spec.source_key)
    except SpecError as exc:
        emit.reject(cmd, f"invalid spec: {exc}")
        return
    emit(ev.MigrationStarted, spec=cmd.spec)
    emit(ev.PhaseRequested, phase=PHASES[0], run=state.run + 1, checkpoint=None)


def _pause(state: MigrationState, cmd: PauseMigration, emit: Emitter) -> None:
    live = state.spec is not None and state.spec.cdc
    why = (
        "only a RUNNING or SYNCING migration can pause"
        if live
        else "only a RUNNING migration can pause"
    )
    if _absent_or_not(state, cmd, emit, {Status.RUNNING, Status.SYNCING}, why):
        return
    emit(ev.MigrationPausing, reason=cmd.reason)


def _resume(state: MigrationState, cmd: ResumeMigration, emit: Emitter) -> None:
    if _absent_or_not(state, cmd, emit, {Status.PAUSED}, "only a PAUSED migration can resume"):
        return
    emit(ev.MigrationResumed)
    emit(ev.PhaseRequested, phase=state.phase, run=state.run + 1, checkpoint=state.checkpoint)


def _retry(state: MigrationState, cmd: RetryMigration, emit: Emitter) -> None:
    if _absent_or_not(state, cmd, emit, {Status.FAILED}, "only a FAILED migration can retry"):
        return
    emit(ev.MigrationRetried)
    emit(ev.PhaseRequested, phase=state.phase, run=state.run + 1, checkpoint=state.checkpoint)


def _cancel(state: MigrationState, cmd: CancelMigration, emit: Emitter) -> None:
    allowed = set(Status) - TERMINAL
    if _absent_or_not(state, cmd, emit, allowed, "a finished migration cannot be cancelled"):
        return
    emit(ev.MigrationCancelled, reason=cmd.reason)


def _absent_or_not(
    state: MigrationState, cmd: Command, emit: Emitter, allowed: set[Status], why: str
) -> bool:
    """Reject `cmd` unless the migration exists and is in an `allowed` state."""
    if not state.exists:
        emit.reject(cmd, f"no migration {state.migration_id}")
    elif state.status not in allowed:
        emit.reject(cmd, f"{why}; it is {state.status}")
    else:
        return False
    return True


_ACTIVE = (Status.RUNNING, Status.PAUSING, Status.SYNCING, Status.CUTTING_OVER)


def _stale(state: MigrationState, result: PhaseResult) -> bool:
    active = state.status in _ACTIVE
    return not active or result.run != state.run or result.phase != state.phase


def _progressed(state: MigrationState, res: PhaseProgressed, emit: Emitter) -> None:
    emit(
        ev.PhaseProgressRecorded,
        phase=res.phase,
        rows_done=res.rows_done,
        rows_total=res.rows_total,
        checkpoint=res.checkpoint,
        bytes_done=res.bytes_done,
        snapshot=res.snapshot,
        lag_bytes=res.lag_bytes,
        lag_seconds=res.lag_seconds,
        position=res.position,
    )


def _completed(res: PhaseSucceeded, emit: Emitter) -> None:
    emit(
        ev.PhaseCompleted,
        phase=res.phase,
        rows_done=res.rows_done,
        score=res.score,
        bytes_done=res.bytes_done,
        snapshot=res.snapshot,
    )


def _succeeded(state: MigrationState, res: PhaseSucceeded, emit: Emitter) -> None:
    if res.phase == Phase.SYNC:
        return  # a sync run ends only when superseded, paused or failed
    if res.phase == Phase.CUTOVER:
        _cut_over(res, emit)
        return
    _completed(res, emit)
    following = phase_after(state.spec, res.phase)
    if res.phase in CHECKS and state.differing:
        emit(ev.MigrationFailed, reason=f"{res.phase}: {state.differing} keys differ")
    elif following is None:
        emit(ev.MigrationCompleted)
    elif state.status is Status.PAUSING:
        emit(ev.MigrationPaused, checkpoint=None)
    else:
        emit(ev.PhaseRequested, phase=following, run=state.run + 1, checkpoint=None)


def _halted(state: MigrationState, res: PhaseHalted, emit: Emitter) -> None:
    if state.status is Status.PAUSING:
        emit(ev.MigrationPaused, checkpoint=res.checkpoint)


def _errored(state: MigrationState, res: PhaseErrored, emit: Emitter) -> None:
    if res.kind == ErrorKind.SCHEMA_DRIFTED:
        emit(ev.SchemaDrifted, phase=res.phase, reason=res.reason, checkpoint=res.checkpoint)
        return
    _phase_failed(res.phase, res.reason, res.checkpoint, emit)


def _phase_failed(phase: str, reason: str, checkpoint: str | None, emit: Emitter) -> None:
    """A phase failed, and with it the migration."""
    emit(ev.PhaseFailed, phase=phase, reason=reason, checkpoint=checkpoint)
    emit(ev.MigrationFailed, reason=f"{phase} failed: {reason}")


# Live migrations (domain.live).


def _cutover(state: MigrationState, cmd: CutoverMigration, emit: Emitter) -> None:
    why = "only a SYNCING migration can cut over"
    if _absent_or_not(state, cmd, emit, {Status.SYNCING}, why):
        return
    problem = cutover_problem(cmd)
    if problem is not None:
        emit.reject(cmd, f"invalid cutover: {problem}")
        return
    options = options_of(cmd)
    emit(
        ev.CutoverRequested,
        max_lag_bytes=options.max_lag_bytes,
        max_lag_seconds=options.max_lag_seconds,
        freeze=options.freeze,
    )
    emit(ev.PhaseRequested, phase=Phase.CUTOVER, run=state.run + 1, checkpoint=state.checkpoint)


def _abort_cutover(state: MigrationState, cmd: AbortCutover, emit: Emitter) -> None:
    why = "only a migration that is cutting over can abort its cutover"
    if _absent_or_not(state, cmd, emit, {Status.CUTTING_OVER}, why):
        return
    emit(ev.CutoverAborted, reason=cmd.reason)
    emit(ev.PhaseRequested, phase=Phase.SYNC, run=state.run + 1, checkpoint=state.checkpoint)


def _cut_over(res: PhaseSucceeded, emit: Emitter) -> None:
    if res.cutover is None:
        reason = "cutover reported success without its result (position, counts, checksums)"
        _phase_failed(res.phase, reason, None, emit)
        return
    _completed(res, emit)
    emit(ev.CutoverCompleted, result=res.cutover)
    emit(ev.MigrationCompleted)


# Row-level diff and repair: asked for once the target is loaded (the
# migration completed, or failed at reconcile or at an earlier diff or repair).
LOADED = frozenset({Phase.RECONCILE, *CHECKS})


def _diff(state: MigrationState, cmd: DiffMigration, emit: Emitter) -> None:
    if _not_loaded(state, cmd, emit, "diff"):
        return
    emit(ev.PhaseRequested, phase=Phase.DIFF, run=state.run + 1, checkpoint=None)


def _repair(state: MigrationState, cmd: RepairMigration, emit: Emitter) -> None:
    if _not_loaded(state, cmd, emit, "repair"):
        return
    if state.differing is None:
        emit.reject(cmd, "nothing to repair: no diff was taken yet (run a diff first)")
    elif state.differing == 0:
        emit.reject(cmd, "nothing to repair: the last diff found no differing keys")
    else:
        emit(ev.PhaseRequested, phase=Phase.REPAIR, run=state.run + 1, checkpoint=None)


def _not_loaded(state: MigrationState, cmd: Command, emit: Emitter, what: str) -> bool:
    """Reject `cmd` unless the migration's target is loaded and nothing runs."""
    why = f"only a COMPLETED migration, or one FAILED after its load, can {what}"
    allowed = {Status.COMPLETED, Status.FAILED}
    if _absent_or_not(state, cmd, emit, allowed, why):
        return True
    if state.status is Status.FAILED and state.phase not in LOADED:
        emit.reject(cmd, f"{why}; it failed in {state.phase}, before its load")
        return True
    return False


def _diff_taken(res: DiffTaken, emit: Emitter) -> None:
    emit(ev.DiffRecorded, phase=res.phase, **diff_figures(res))


def diff_figures(found: DiffFigures) -> dict[str, Any]:
    """The figures of a diff, as keywords for another record that carries them."""
    return {f.name: getattr(found, f.name) for f in fields(DiffFigures)}

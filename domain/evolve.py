"""evolve: fold one event into a migration's state.

One small fold per event type, chosen by a `match` that ends in
`assert_never`, so an event type without a fold is a type error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar, assert_never

from domain import events as ev
from domain.commands import CutoverOptions
from domain.events import Event, MigrationEvent, PhaseEvent
from domain.frozen import replace
from domain.state import CHECKS, MigrationState, Phase, Status, phase_after

T = TypeVar("T")


def evolve(state: MigrationState, event: Event) -> MigrationState:
    """The state after `event`; the event's sequence must be the next one."""
    if event.sequence != state.version + 1:
        raise ValueError(
            f"event {event.event_id}: sequence {event.sequence} after version {state.version}"
        )
    marked = _mark_seen(replace(state, version=event.sequence), event)
    if isinstance(event, PhaseEvent):
        return _fold_phase_event(marked, event)
    return _fold_migration_event(marked, event)


def replay(migration_id: str, events: Iterable[Event]) -> MigrationState:
    """Rebuild a migration's state from its events."""
    state = MigrationState(migration_id=migration_id)
    for event in events:
        state = evolve(state, event)
    return state


# Events only a phase result causes: their cause goes to `seen_results`, not
# to the command ids in `seen`.
_CAUSED_BY_RESULTS = (
    ev.PhaseProgressRecorded,
    ev.PhaseCompleted,
    ev.PhaseFailed,
    ev.MigrationCompleted,
    ev.MigrationFailed,
    ev.CutoverCompleted,
    ev.SchemaDrifted,
    ev.DiffRecorded,
)


def _mark_seen(state: MigrationState, event: Event) -> MigrationState:
    """Remember the cause: command ids forever, result ids for the current run."""
    if isinstance(event, ev.PhaseRequested):
        # a diff or repair is asked for by a command alone, with no event before
        asked = event.phase in CHECKS
        seen = state.seen | {event.causation_id} if asked else state.seen
        return replace(state, seen_results=frozenset(), seen=seen)
    by_result = isinstance(event, _CAUSED_BY_RESULTS)
    # A pause completes on a phase result; its cause is that result.
    by_result |= isinstance(event, ev.MigrationPaused) and state.status is Status.PAUSING
    if by_result:
        return replace(state, seen_results=state.seen_results | {event.causation_id})
    return replace(state, seen=state.seen | {event.causation_id})


def _fold_phase_event(s: MigrationState, e: PhaseEvent) -> MigrationState:
    match e:
        case ev.PhaseRequested():
            return _requested(s, e)
        case ev.PhaseProgressRecorded():
            return _progress(s, e)
        case ev.PhaseCompleted():
            return _completed_phase(s, e)
        case ev.PhaseFailed():
            return replace(s, checkpoint=_kept(e.checkpoint, s.checkpoint))
        case _:
            assert_never(e)


def _fold_migration_event(s: MigrationState, e: MigrationEvent) -> MigrationState:
    match e:
        case ev.MigrationStarted():
            return replace(s, status=Status.RUNNING, spec=e.spec)
        case ev.MigrationPausing():
            return replace(s, status=Status.PAUSING, reason=e.reason or None)
        case ev.MigrationPaused():
            return replace(s, status=Status.PAUSED, checkpoint=_kept(e.checkpoint, s.checkpoint))
        case ev.MigrationResumed() | ev.MigrationRetried():
            return replace(s, status=Status.RUNNING, reason=None)
        case ev.MigrationCompleted():
            return replace(s, status=Status.COMPLETED, finished_at=e.occurred_at)
        case ev.MigrationFailed():
            return replace(s, status=Status.FAILED, reason=e.reason or s.reason)
        case ev.MigrationCancelled():
            return replace(
                s, status=Status.CANCELLED, reason=e.reason or s.reason, finished_at=e.occurred_at
            )
        case ev.CommandRejected():
            return s
        case ev.CutoverRequested():
            return _cutover_requested(s, e)
        case ev.CutoverAborted():
            return replace(s, reason=e.reason or None)
        case ev.CutoverCompleted():
            return replace(s, position=e.result.position, lag_bytes=0, lag_seconds=0.0)
        case ev.SchemaDrifted():
            checkpoint = _kept(e.checkpoint, s.checkpoint)
            return replace(
                s, status=Status.PAUSED, phase=Phase.SYNC, reason=e.reason, checkpoint=checkpoint
            )
        case ev.DiffRecorded():
            return replace(s, differing=e.differing)
        case _:
            assert_never(e)


_STATUS_OF_PHASE = {Phase.SYNC: Status.SYNCING, Phase.CUTOVER: Status.CUTTING_OVER}


def _requested(s: MigrationState, e: ev.PhaseRequested) -> MigrationState:
    fresh = e.phase != s.phase or e.checkpoint is None
    return replace(
        s,
        status=_STATUS_OF_PHASE.get(Phase(e.phase), Status.RUNNING),
        phase=Phase(e.phase),
        run=e.run,
        checkpoint=e.checkpoint,
        rows_done=0 if fresh else s.rows_done,
        rows_total=0 if fresh else s.rows_total,
    )


def _progress(s: MigrationState, e: ev.PhaseProgressRecorded) -> MigrationState:
    # Progress without a checkpoint keeps the last one, as a halt or an error does.
    checkpoint = _kept(e.checkpoint, s.checkpoint)
    return replace(
        s,
        rows_done=e.rows_done,
        rows_total=e.rows_total,
        checkpoint=checkpoint,
        lag_bytes=_kept(e.lag_bytes, s.lag_bytes),
        lag_seconds=_kept(e.lag_seconds, s.lag_seconds),
        position=_kept(e.position, s.position),
    )


def _completed_phase(s: MigrationState, e: ev.PhaseCompleted) -> MigrationState:
    score = e.score if e.score is not None else s.score
    following = phase_after(s.spec, e.phase) or Phase(e.phase)
    # A phase that reported no progress (reconcile) still ends at done == total.
    total = max(s.rows_total, e.rows_done)
    return replace(
        s, phase=following, rows_done=e.rows_done, rows_total=total, score=score, checkpoint=None
    )


def _kept(checkpoint: T | None, before: T | None) -> T | None:
    """A new value (a checkpoint, a lag), else the last one."""
    return checkpoint if checkpoint is not None else before


def _cutover_requested(s: MigrationState, e: ev.CutoverRequested) -> MigrationState:
    options = CutoverOptions(
        max_lag_bytes=e.max_lag_bytes, max_lag_seconds=e.max_lag_seconds, freeze=e.freeze
    )
    return replace(s, cutover=options)

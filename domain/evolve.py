"""evolve: fold one event into a migration's state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from domain import events as ev
from domain.events import Event
from domain.state import MigrationState, Status, next_phase


def evolve(state: MigrationState, event: Event) -> MigrationState:
    """The state after `event`; the event's sequence must be the next one."""
    if event.sequence != state.version + 1:
        raise ValueError(
            f"event {event.event_id}: sequence {event.sequence} after version {state.version}"
        )
    marked = _mark_seen(replace(state, version=event.sequence), event)
    return _FOLDS[type(event)](marked, event)


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
)


def _mark_seen(state: MigrationState, event: Event) -> MigrationState:
    """Remember the cause: command ids forever, result ids for the current run."""
    if isinstance(event, ev.PhaseRequested):
        return replace(state, seen_results=frozenset())
    by_result = isinstance(event, _CAUSED_BY_RESULTS)
    # A pause completes on a phase result; its cause is that result.
    by_result |= isinstance(event, ev.MigrationPaused) and state.status is Status.PAUSING
    if by_result:
        return replace(state, seen_results=state.seen_results | {event.causation_id})
    return replace(state, seen=state.seen | {event.causation_id})


def _started(s: MigrationState, e: ev.MigrationStarted) -> MigrationState:
    return replace(s, status=Status.RUNNING, spec=e.spec)


def _requested(s: MigrationState, e: ev.PhaseRequested) -> MigrationState:
    fresh = e.phase != s.phase or e.checkpoint is None
    return replace(
        s,
        status=Status.RUNNING,
        phase=e.phase,
        run=e.run,
        checkpoint=e.checkpoint,
        rows_done=0 if fresh else s.rows_done,
        rows_total=0 if fresh else s.rows_total,
    )


def _progress(s: MigrationState, e: ev.PhaseProgressRecorded) -> MigrationState:
    # Progress without a checkpoint keeps the last one, as a halt or an error does.
    checkpoint = e.checkpoint if e.checkpoint is not None else s.checkpoint
    return replace(s, rows_done=e.rows_done, rows_total=e.rows_total, checkpoint=checkpoint)


def _completed_phase(s: MigrationState, e: ev.PhaseCompleted) -> MigrationState:
    score = e.score if e.score is not None else s.score
    following = next_phase(e.phase) or e.phase
    # A phase that reported no progress (reconcile) still ends at done == total.
    total = max(s.rows_total, e.rows_done)
    return replace(
        s, phase=following, rows_done=e.rows_done, rows_total=total, score=score, checkpoint=None
    )


def _failed_phase(s: MigrationState, e: ev.PhaseFailed) -> MigrationState:
    return replace(s, checkpoint=e.checkpoint if e.checkpoint is not None else s.checkpoint)


def _pausing(s: MigrationState, e: ev.MigrationPausing) -> MigrationState:
    return replace(s, status=Status.PAUSING, reason=e.reason or None)


def _paused(s: MigrationState, e: ev.MigrationPaused) -> MigrationState:
    checkpoint = e.checkpoint if e.checkpoint is not None else s.checkpoint
    return replace(s, status=Status.PAUSED, checkpoint=checkpoint)


def _resumed(s: MigrationState, e: ev.MigrationResumed | ev.MigrationRetried) -> MigrationState:
    return replace(s, status=Status.RUNNING, reason=None)


def _status(status: Status) -> Callable[[MigrationState, Any], MigrationState]:
    def fold(s: MigrationState, e: Any) -> MigrationState:
        return replace(s, status=status, reason=getattr(e, "reason", None) or s.reason)

    return fold


def _unchanged(s: MigrationState, e: Any) -> MigrationState:
    return s


_FOLDS: dict[type[Any], Callable[[MigrationState, Any], MigrationState]] = {
    ev.MigrationStarted: _started,
    ev.PhaseRequested: _requested,
    ev.PhaseProgressRecorded: _progress,
    ev.PhaseCompleted: _completed_phase,
    ev.PhaseFailed: _failed_phase,
    ev.MigrationPausing: _pausing,
    ev.MigrationPaused: _paused,
    ev.MigrationResumed: _resumed,
    ev.MigrationRetried: _resumed,
    ev.MigrationCompleted: _status(Status.COMPLETED),
    ev.MigrationFailed: _status(Status.FAILED),
    ev.MigrationCancelled: _status(Status.CANCELLED),
    ev.CommandRejected: _unchanged,
}

"""Fold a batch of events into read-model rows: pure, no I/O.

A migration's row is the domain's own fold (`evolve`) plus its timestamps;
its phase rows follow the phase events. The projector loads the rows a batch
touches, folds every event in memory, then writes each row once. Each event is
judged first (`projections.quarantine`): a gap or a fork quarantines its
migration, whose later events are then held back; the others go on.

Rows are frozen msgspec structs: a fold copies a row or a phase row with a few
fields changed for nearly every event, and a struct is built and copied
several times faster than a frozen dataclass (`msgspec.structs.replace`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from domain import CHECKS, CutoverResult, MigrationState, PhaseStatus, SnapshotRef, evolve
from domain import events as ev
from domain.events import Event, PhaseEvent
from projections.pace import UNKNOWN, Done, Pace, RunStart, pace, restarted
from projections.quarantine import Quarantine, Verdict, judge, stored_form

OUTCOMES: dict[type[Event], str] = {
    ev.MigrationCompleted: "completed",
    ev.MigrationFailed: "failed",
    ev.MigrationCancelled: "cancelled",
}


class Row(Struct, frozen=True):
    """A migration's row: its state, when things happened to it, its
    quarantine (None: not quarantined) and what its cutover ended with."""

    state: MigrationState
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    quarantine: Quarantine | None = None
    cutover_result: CutoverResult | None = None


class PhaseRow(Struct, frozen=True):
    """A phase's row. Its run's pace (`projections.pace`) is measured from
    `run_started_at` and the rows and bytes done then (None: not known, a
    row from before the read model kept it)."""

    migration_id: str
    phase: str
    status: PhaseStatus
    run: int
    started_at: str
    updated_at: str
    rows_done: int = 0
    rows_total: int = 0
    checkpoint: str | None = None
    score: float | None = None
    reason: str | None = None
    finished_at: str | None = None
    bytes_done: int = 0
    snapshot: SnapshotRef | None = None
    run_started_at: str | None = None
    run_rows_from: int = 0
    run_bytes_from: int = 0
    rows_per_second: float | None = None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None
    eta_at: str | None = None

    @property
    def run_start(self) -> RunStart | None:
        if self.run_started_at is None:
            return None
        return RunStart(self.run_started_at, self.run_rows_from, self.run_bytes_from)


PhaseKey = tuple[str, str]
EventKey = tuple[str, int]  # (migration_id, sequence)


@dataclass
class Folded:
    """What a batch changes: rows and phase rows touched, events to record,
    identical repeats, events held back (their migration is quarantined), the
    migrations this batch quarantined (their rows are in `rows`), durations
    ended, and the feed version each row was written with (once written)."""

    rows: dict[str, Row] = field(default_factory=dict)
    phases: dict[PhaseKey, PhaseRow] = field(default_factory=dict)
    history: list[Event] = field(default_factory=list)
    duplicates: list[Event] = field(default_factory=list)
    held: list[Event] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    durations: list[tuple[str, float]] = field(default_factory=list)
    feeds: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Folded) -> None:
        """Take in what `other`, folded after this one, changes."""
        self.rows.update(other.rows)
        self.phases.update(other.phases)
        self.history += other.history
        self.duplicates += other.duplicates
        self.held += other.held
        self.quarantined += other.quarantined
        self.durations += other.durations
        self.feeds.update(other.feeds)


def fold_batch(
    rows: Mapping[str, Row],
    phases: Mapping[PhaseKey, PhaseRow],
    events: Iterable[Event],
    stored: Mapping[EventKey, object] | None = None,
) -> Folded:
    """Apply `events` in order onto the stored `rows` and `phases`. `stored`
    holds the stored form of the applied events that the batch repeats (to
    tell a repeat from a fork)."""
    out, applied = Folded(), dict[EventKey, Event]()
    for event in events:
        mid = event.migration_id
        row = out.rows.get(mid) or rows.get(mid) or Row(state=MigrationState(migration_id=mid))
        if row.quarantine is not None:
            out.held.append(event)
            continue
        key = (mid, event.sequence)
        verdict = judge(row.state.version, event, _earlier(key, applied, stored or {}))
        if verdict is Verdict.REPEAT:
            out.duplicates.append(event)
        elif isinstance(verdict, Quarantine):
            out.rows[mid] = quarantined(row, verdict)
            out.quarantined.append(mid)
            out.held.append(event)
        else:
            _apply(out, row, phases, event)
            applied[key] = event
    return out


def phases_read(events: Sequence[Event]) -> tuple[list[str], list[PhaseKey]]:
    """The stored phase rows folding `events` may read: every phase of each
    migration they pause or cancel (that stops its current phase, whichever
    it is by then), else those the phase events name. Any other event reads
    no phase row (`fold_phase`)."""
    stopped = {e.migration_id for e in events if isinstance(e, _STOPPING)}
    named = {
        (e.migration_id, e.phase)
        for e in events
        if isinstance(e, PhaseEvent) and e.migration_id not in stopped
    }
    return sorted(stopped), sorted(named)


_STOPPING = (
    ev.MigrationPaused,
    ev.MigrationCancelled,
    ev.SchemaDrifted,
    ev.CutoverRequested,
    ev.CutoverAborted,
)


def quarantined(row: Row, quarantine: Quarantine) -> Row:
    return replace(row, quarantine=quarantine)


def _earlier(
    key: EventKey, applied: Mapping[EventKey, Event], stored: Mapping[EventKey, object]
) -> object | None:
    if key in applied:
        earlier: object = stored_form(applied[key])
        return earlier
    return stored.get(key)


def _apply(out: Folded, row: Row, phases: Mapping[PhaseKey, PhaseRow], event: Event) -> None:
    mid = event.migration_id
    key = (mid, _phase_of(row.state, event))
    phase = fold_phase(out.phases.get(key) or phases.get(key), row.state, event)
    if phase is not None:
        out.phases[key] = phase
    out.rows[mid] = fold_row(row, event)
    out.history.append(event)
    if type(event) in OUTCOMES and row.started_at:
        out.durations.append((OUTCOMES[type(event)], _seconds(row.started_at, event)))


def fold_row(row: Row, event: Event) -> Row:
    at = event.occurred_at
    started = at if isinstance(event, ev.MigrationStarted) else row.started_at
    finished = row.finished_at
    if type(event) in OUTCOMES:
        finished = at
    elif isinstance(event, ev.MigrationRetried | ev.MigrationResumed):
        finished = None
    elif isinstance(event, ev.PhaseRequested) and event.phase in CHECKS:
        finished = None  # a diff or repair of a finished migration: running again
    result = event.result if isinstance(event, ev.CutoverCompleted) else row.cutover_result
    return replace(
        row,
        state=evolve(row.state, event),
        cutover_result=result,
        created_at=row.created_at or at,
        updated_at=at,
        started_at=started,
        finished_at=finished,
    )


def fold_phase(old: PhaseRow | None, state: MigrationState, event: Event) -> PhaseRow | None:
    """The phase row after `event` (None: the event touches no phase row)."""
    at = event.occurred_at
    if isinstance(event, ev.PhaseRequested):
        return _requested(old, event)
    if old is None:
        return None
    if isinstance(event, ev.PhaseProgressRecorded):
        checkpoint = event.checkpoint if event.checkpoint is not None else old.checkpoint
        done = Done(at, event.rows_done, event.rows_total, event.bytes_done)
        return _measured(
            replace(old, checkpoint=checkpoint, snapshot=event.snapshot or old.snapshot), done
        )
    if isinstance(event, ev.PhaseCompleted):
        return _completed(old, event)
    if isinstance(event, ev.PhaseFailed):
        checkpoint = event.checkpoint if event.checkpoint is not None else old.checkpoint
        return replace(
            old,
            status=PhaseStatus.FAILED,
            reason=event.reason,
            checkpoint=checkpoint,
            updated_at=at,
            **_NO_ETA,
        )
    return _stopped(old, event)


def _completed(old: PhaseRow, event: ev.PhaseCompleted) -> PhaseRow:
    at = event.occurred_at
    # A phase that reported no progress (reconcile) still ends at done == total;
    # bytes as the last progress counted them, unless the completion counted more.
    total = max(old.rows_total, event.rows_done)
    done = Done(at, event.rows_done, total, max(old.bytes_done, event.bytes_done))
    score = event.score if event.score is not None else old.score
    ended = replace(
        old,
        status=PhaseStatus.COMPLETED,
        score=score,
        snapshot=event.snapshot or old.snapshot,
        checkpoint=None,
        finished_at=at,
    )
    return replace(_measured(ended, done), eta_seconds=0.0, eta_at=at)


def _measured(old: PhaseRow, done: Done) -> PhaseRow:
    """The row at `done`, with its run's pace as of then."""
    start = old.run_start
    if start is not None and restarted(old.rows_done, old.bytes_done, done):
        start = RunStart(done.at, done.rows, done.bytes)
    return replace(
        old,
        rows_done=done.rows,
        rows_total=done.rows_total,
        bytes_done=done.bytes,
        updated_at=done.at,
        **_run_start(start),
        **_pace(pace(start, done)),
    )


def _run_start(start: RunStart | None) -> dict[str, Any]:
    if start is None:
        return {"run_started_at": None, "run_rows_from": 0, "run_bytes_from": 0}
    return {"run_started_at": start.at, "run_rows_from": start.rows, "run_bytes_from": start.bytes}


def _pace(p: Pace) -> dict[str, Any]:
    return {
        "rows_per_second": p.rows_per_second,
        "bytes_per_second": p.bytes_per_second,
        "eta_seconds": p.eta_seconds,
        "eta_at": p.eta_at,
    }


# A phase that is not running has no ETA (its rates stay: they were measured).
_NO_ETA: dict[str, Any] = {"eta_seconds": None, "eta_at": None}


def _requested(old: PhaseRow | None, event: ev.PhaseRequested) -> PhaseRow:
    """A new run: from scratch, or (with a checkpoint) from where the last
    one got to; either way measured from now, with no pace yet."""
    at = event.occurred_at
    if old is None or event.checkpoint is None:
        return PhaseRow(
            migration_id=event.migration_id,
            phase=event.phase,
            status=PhaseStatus.RUNNING,
            run=event.run,
            started_at=at,
            updated_at=at,
            run_started_at=at,
        )
    return replace(
        old,
        status=PhaseStatus.RUNNING,
        run=event.run,
        checkpoint=event.checkpoint,
        reason=None,
        finished_at=None,
        updated_at=at,
        **_run_start(RunStart(at, old.rows_done, old.bytes_done)),
        **_pace(UNKNOWN),
    )


def _stopped(old: PhaseRow, event: Event) -> PhaseRow | None:
    """A pause or a cancel stops the phase in progress; so does a schema drift
    (paused, with the change as its reason), a cutover (the sync run it
    replaces is done) and an abort (the cutover run is cancelled)."""
    if old.status in (PhaseStatus.COMPLETED, PhaseStatus.FAILED):
        return None
    at = event.occurred_at
    if isinstance(event, ev.MigrationPaused):
        return replace(old, status=PhaseStatus.PAUSED, updated_at=at, **_NO_ETA)
    if isinstance(event, ev.MigrationCancelled):
        return replace(old, status=PhaseStatus.CANCELLED, updated_at=at, **_NO_ETA)
    if isinstance(event, ev.SchemaDrifted):
        return replace(
            old, status=PhaseStatus.PAUSED, reason=event.reason, updated_at=at, **_NO_ETA
        )
    if isinstance(event, ev.CutoverRequested):
        return replace(old, status=PhaseStatus.COMPLETED, finished_at=at, updated_at=at, **_NO_ETA)
    if isinstance(event, ev.CutoverAborted):
        reason = f"aborted: {event.reason}" if event.reason else "aborted"
        return replace(old, status=PhaseStatus.CANCELLED, reason=reason, updated_at=at, **_NO_ETA)
    return None


def _phase_of(state: MigrationState, event: Event) -> str:
    """The phase an event is about: its own, else the migration's current one."""
    if isinstance(event, PhaseEvent):
        return event.phase
    return state.phase or ""


def _seconds(start: str, event: Event) -> float:
    end = datetime.fromisoformat(event.occurred_at)
    return max(0.0, (end - datetime.fromisoformat(start)).total_seconds())

"""When a finished migration's state is retired (pure).

A COMPLETED or CANCELLED migration can do nothing more but answer commands
with a rejection, so its state need not be kept: after the retention period
(counted from its finishing event's time) the orchestrator drops it from its
memory and its changelog, and keeps only the migration's id and version, so
that a later command for it is rejected as retired (with the next sequence:
its event log stays gapless) and its id is never started again. A FAILED
migration is not finished: it can be retried at any time, so it is kept.

The migration's events stay in the log forever and the read model keeps its
row; only the orchestrator forgets.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.state import MigrationState, Status

RETIRABLE = frozenset({Status.COMPLETED, Status.CANCELLED})


def finished_since(state: MigrationState) -> datetime | None:
    """When the migration finished for good (None: it has not, or was retired).
    A finished state that does not say when (written before `finished_at`
    existed) counts as finished at the epoch: it is retired at the next sweep."""
    if state.retired or state.status not in RETIRABLE:
        return None
    if state.finished_at is None:
        return datetime.fromtimestamp(0).astimezone()
    return datetime.fromisoformat(state.finished_at)


def retirement_due(state: MigrationState, now: datetime, retention: timedelta) -> bool:
    """Whether `state` is finished and has been for at least `retention`."""
    since = finished_since(state)
    return since is not None and now - since >= retention


def retired(state: MigrationState) -> MigrationState:
    """What is kept of a retired migration: its id and version."""
    return MigrationState(migration_id=state.migration_id, version=state.version, retired=True)


def retired_reason(migration_id: str) -> str:
    return (
        f"migration {migration_id} was retired: it finished, and its state was dropped"
        " after the retention period (its events and read-model row remain);"
        " start a new migration under another id"
    )

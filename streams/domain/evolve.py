"""evolve: fold one event into a migration's state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from streams.domain.events import CommandRejected, Event, MigrationStarted
from streams.domain.state import MigrationState, Status


def evolve(state: MigrationState, event: Event) -> MigrationState:
    """The state after `event`; the event's sequence must be the next one."""
    if event.sequence != state.version + 1:
        raise ValueError(
            f"event {event.event_id}: sequence {event.sequence} after version {state.version}"
        )
    seen = state.seen_commands | {event.causation_id}
    if isinstance(event, MigrationStarted):
        return replace(
            state,
            status=Status.RUNNING,
            version=event.sequence,
            spec=event.spec,
            seen_commands=seen,
        )
    if isinstance(event, CommandRejected):
        return replace(state, version=event.sequence, seen_commands=seen)
    raise TypeError(f"unknown event {type(event).__name__}")


def replay(migration_id: str, events: Iterable[Event]) -> MigrationState:
    """Rebuild a migration's state from its events."""
    state = MigrationState(migration_id=migration_id)
    for event in events:
        state = evolve(state, event)
    return state

"""decide: the events a command causes in a given state."""

from __future__ import annotations

from streams.domain.commands import Command, StartMigration
from streams.domain.events import CommandRejected, Event, MigrationStarted
from streams.domain.state import MigrationState


def event_id(migration_id: str, sequence: int) -> str:
    """Event ids are deterministic, so a replay reproduces them."""
    return f"{migration_id}:{sequence}"


def decide(state: MigrationState, command: Command, at: str) -> tuple[Event, ...]:
    """Return the events `command` causes; a command seen before causes none."""
    if command.command_id in state.seen_commands:
        return ()
    if isinstance(command, StartMigration):
        return (_start(state, command, at),)
    raise TypeError(f"unknown command {type(command).__name__}")


def _start(state: MigrationState, command: StartMigration, at: str) -> Event:
    seq = state.version + 1
    if state.exists:
        return CommandRejected(
            event_id=event_id(state.migration_id, seq),
            migration_id=state.migration_id,
            sequence=seq,
            occurred_at=at,
            causation_id=command.command_id,
            command_type=command.type,
            reason=f"migration {state.migration_id} already exists ({state.status})",
        )
    return MigrationStarted(
        event_id=event_id(state.migration_id, seq),
        migration_id=state.migration_id,
        sequence=seq,
        occurred_at=at,
        causation_id=command.command_id,
        spec=command.spec,
    )

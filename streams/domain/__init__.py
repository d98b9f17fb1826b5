"""The pure domain: commands, events, states and the two functions over them.

`decide(state, command, at)` returns the events a command causes;
`evolve(state, event)` folds one event into the state. No I/O, no clock,
no randomness: times and ids come in as arguments.
"""

from streams.domain.commands import Command, MigrationSpec, StartMigration
from streams.domain.decide import decide
from streams.domain.events import CommandRejected, Event, MigrationStarted
from streams.domain.evolve import evolve, replay
from streams.domain.state import MigrationState, Status

__all__ = [
    "Command",
    "CommandRejected",
    "Event",
    "MigrationSpec",
    "MigrationStarted",
    "MigrationState",
    "StartMigration",
    "Status",
    "decide",
    "evolve",
    "replay",
]

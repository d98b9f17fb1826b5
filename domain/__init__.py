"""The pure domain: inputs, events, states, tasks and the functions over them.

`decide(state, input, at)` returns the events an input causes;
`evolve(state, event)` folds one event into the state; `task_for(state, event)`
names the phase task an event calls for. No I/O, no clock, no randomness:
times and ids come in as arguments.
"""

from domain.commands import (
    CancelMigration,
    Command,
    Input,
    MigrationSpec,
    PauseMigration,
    PhaseErrored,
    PhaseHalted,
    PhaseProgressed,
    PhaseResult,
    PhaseSucceeded,
    ResumeMigration,
    RetryMigration,
    StartMigration,
)
from domain.decide import decide, event_id
from domain.events import (
    CommandRejected,
    Event,
    MigrationCancelled,
    MigrationCompleted,
    MigrationFailed,
    MigrationPaused,
    MigrationPausing,
    MigrationResumed,
    MigrationRetried,
    MigrationStarted,
    PhaseCompleted,
    PhaseFailed,
    PhaseProgressRecorded,
    PhaseRequested,
)
from domain.evolve import evolve, replay
from domain.state import PHASES, TERMINAL, MigrationState, Status, next_phase
from domain.tasks import CancelPhase, PausePhase, PhaseTask, RunPhase, task_for

__all__ = [
    "PHASES",
    "TERMINAL",
    "CancelMigration",
    "CancelPhase",
    "Command",
    "CommandRejected",
    "Event",
    "Input",
    "MigrationCancelled",
    "MigrationCompleted",
    "MigrationFailed",
    "MigrationPaused",
    "MigrationPausing",
    "MigrationResumed",
    "MigrationRetried",
    "MigrationSpec",
    "MigrationStarted",
    "MigrationState",
    "PauseMigration",
    "PausePhase",
    "PhaseCompleted",
    "PhaseErrored",
    "PhaseFailed",
    "PhaseHalted",
    "PhaseProgressRecorded",
    "PhaseProgressed",
    "PhaseRequested",
    "PhaseResult",
    "PhaseSucceeded",
    "PhaseTask",
    "ResumeMigration",
    "RetryMigration",
    "RunPhase",
    "StartMigration",
    "Status",
    "decide",
    "event_id",
    "evolve",
    "next_phase",
    "replay",
    "task_for",
]

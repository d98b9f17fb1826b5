"""What one input does: decide, fold, and name the records to write. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from domain import Event, Input, MigrationState, PhaseTask, decide, evolve, task_for


@dataclass(frozen=True)
class Outcome:
    state: MigrationState
    events: tuple[Event, ...] = ()
    tasks: tuple[PhaseTask, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.events)


def handle(state: MigrationState, given: Input, at: str) -> Outcome:
    """The events `given` causes, the tasks they call for, and the new state."""
    events = decide(state, given, at)
    tasks: list[PhaseTask] = []
    for event in events:
        state = evolve(state, event)
        task = task_for(state, event)
        if task is not None:
            tasks.append(task)
    return Outcome(state, events, tuple(tasks))

"""Phase tasks: the orchestrator's work orders to the phase workers, derived
from the events that call for them."""

from __future__ import annotations

from dataclasses import dataclass

from domain.commands import MigrationSpec
from domain.events import Event, MigrationCancelled, MigrationPausing, PhaseRequested
from domain.state import MigrationState


@dataclass(frozen=True)
class RunPhase:
    task_id: str
    migration_id: str
    phase: str
    run: int
    spec: MigrationSpec
    checkpoint: str | None = None
    type: str = "RunPhase"


@dataclass(frozen=True)
class PausePhase:
    task_id: str
    migration_id: str
    phase: str
    run: int
    type: str = "PausePhase"


@dataclass(frozen=True)
class CancelPhase:
    task_id: str
    migration_id: str
    run: int
    spec: MigrationSpec | None = None
    type: str = "CancelPhase"


PhaseTask = RunPhase | PausePhase | CancelPhase


def task_for(state: MigrationState, event: Event) -> PhaseTask | None:
    """The task an event calls for, given the state after it (or None)."""
    if isinstance(event, PhaseRequested) and state.spec is not None:
        return RunPhase(
            event.event_id,
            event.migration_id,
            event.phase,
            event.run,
            state.spec,
            event.checkpoint,
        )
    if isinstance(event, MigrationPausing) and state.phase is not None:
        return PausePhase(event.event_id, event.migration_id, state.phase, state.run)
    if isinstance(event, MigrationCancelled):
        return CancelPhase(event.event_id, event.migration_id, state.run, state.spec)
    return None

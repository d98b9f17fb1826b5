"""Phase tasks: the orchestrator's work orders to the phase workers, derived
from the events that call for them, and the reasons a worker stops a run.

A task marked `assist` is one a phase worker sent to the other partitions of
the topic: a copy of the run (or of its pause or cancel) for the group's
other members, which help with the run's work and never answer for it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from domain.commands import CutoverOptions, MigrationSpec, Named
from domain.events import Event, MigrationCancelled, MigrationPausing, PhaseRequested
from domain.state import MigrationState, Phase


@dataclass(frozen=True, kw_only=True)
class TaskEnvelope(Named):
    """What every task carries: its id (the event_id of the event that called
    for it), the migration it is for, and whether it only enlists a helper
    (the orchestrator's tasks never do)."""

    task_id: str
    migration_id: str
    assist: bool = False


@dataclass(frozen=True, kw_only=True)
class RunPhase(TaskEnvelope):
    phase: str
    run: int
    spec: MigrationSpec
    checkpoint: str | None = None
    cutover: CutoverOptions | None = None  # set on a cutover run only


@dataclass(frozen=True, kw_only=True)
class PausePhase(TaskEnvelope):
    phase: str
    run: int


@dataclass(frozen=True, kw_only=True)
class CancelPhase(TaskEnvelope):
    run: int
    spec: MigrationSpec | None = None


PhaseTask = RunPhase | PausePhase | CancelPhase


class AnswerFields(TypedDict):
    """The fields a phase result takes from the task it answers."""

    migration_id: str
    phase: str
    run: int


def answer_fields(task: RunPhase | PausePhase) -> AnswerFields:
    """`PhaseHalted(result_id=..., **answer_fields(task), ...)`: a result
    names the migration, phase and run of its task."""
    return AnswerFields(migration_id=task.migration_id, phase=task.phase, run=task.run)


class StopReason(StrEnum):
    """Why a phase worker stops a run between batches. Only a pause is
    answered (PhaseHalted); a revoked partition or a shutdown leaves the task
    uncommitted, for the next owner to resume."""

    SUPERSEDED = "superseded"  # a newer run of the migration arrived
    PAUSE = "pause"
    CANCEL = "cancel"
    REVOKED = "revoked"
    SHUTDOWN = "shutdown"


def task_for(state: MigrationState, event: Event) -> PhaseTask | None:
    """The task an event calls for, given the state after it (or None)."""
    if isinstance(event, PhaseRequested) and state.spec is not None:
        return RunPhase(
            task_id=event.event_id,
            migration_id=event.migration_id,
            phase=event.phase,
            run=event.run,
            spec=state.spec,
            checkpoint=event.checkpoint,
            cutover=state.cutover if event.phase == Phase.CUTOVER else None,
        )
    if isinstance(event, MigrationPausing) and state.phase is not None:
        return PausePhase(
            task_id=event.event_id,
            migration_id=event.migration_id,
            phase=state.phase,
            run=state.run,
        )
    if isinstance(event, MigrationCancelled):
        return CancelPhase(
            task_id=event.event_id, migration_id=event.migration_id, run=state.run, spec=state.spec
        )
    return None

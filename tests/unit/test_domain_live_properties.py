"""Properties of a live migration (domain.live) over random inputs: a cdc
migration that has just reached SYNCING meets up to 40 random commands
(cutover, abort, pause, resume, retry, cancel) and phase results (progress
with a lag, a success with or without a cutover's result, an error with or
without a schema drift, a halt), mostly of its current run and sometimes of
an older one; ids repeat."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import (
    PHASES,
    AbortCutover,
    CancelMigration,
    CommandRejected,
    CutoverCompleted,
    CutoverMigration,
    CutoverResult,
    Event,
    Input,
    MigrationCompleted,
    MigrationSpec,
    MigrationState,
    PauseMigration,
    PhaseErrored,
    PhaseHalted,
    PhaseProgressed,
    PhaseSucceeded,
    ResumeMigration,
    RetryMigration,
    RunPhase,
    StartMigration,
    Status,
    decide,
    evolve,
    replay,
    task_for,
)

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
    cdc=True,
)
AT = "2026-01-01T00:00:00.000+00:00"
MID = "m-live"
RESULT = CutoverResult(
    position="0/2", source_rows=1, target_rows=1, source_checksum="a", target_checksum="a"
)
COMMANDS = (CutoverMigration, AbortCutover, PauseMigration, ResumeMigration, RetryMigration)
RESULTS = ("lag", "success", "success without result", "error", "drift", "halt")
S = Status
# Every status change an input may cause, its passing states included; staying
# put is always allowed. COMPLETED and CANCELLED have no way out.
ALLOWED = {
    (S.SYNCING, S.CUTTING_OVER),  # cutover
    (S.SYNCING, S.PAUSING),  # pause
    (S.SYNCING, S.PAUSED),  # schema drift
    (S.SYNCING, S.FAILED),
    (S.SYNCING, S.CANCELLED),
    (S.CUTTING_OVER, S.SYNCING),  # abort
    (S.CUTTING_OVER, S.COMPLETED),
    (S.CUTTING_OVER, S.PAUSED),  # schema drift
    (S.CUTTING_OVER, S.FAILED),
    (S.CUTTING_OVER, S.CANCELLED),
    (S.PAUSING, S.PAUSED),
    (S.PAUSING, S.FAILED),
    (S.PAUSING, S.CANCELLED),
    (S.PAUSED, S.RUNNING),  # resume, then the phase's request
    (S.PAUSED, S.CANCELLED),
    (S.FAILED, S.RUNNING),  # retry, then the phase's request
    (S.FAILED, S.CANCELLED),
    (S.RUNNING, S.SYNCING),
    (S.RUNNING, S.CUTTING_OVER),
}
# The only states each live command fits.
FITS = {CutoverMigration: {S.SYNCING}, AbortCutover: {S.CUTTING_OVER}}


@dataclass(frozen=True)
class Step:
    kind: object  # a command class, or one of RESULTS
    key: str  # the command or result id
    older: bool  # a result of the run before the current one

    def resolve(self, s: MigrationState) -> Input:
        if self.kind is CancelMigration or self.kind in COMMANDS:
            command: Input = self.kind(command_id=self.key, migration_id=MID)  # type: ignore[operator]
            return command
        run, phase = s.run - (1 if self.older else 0), s.phase or "sync"
        answers = {"result_id": self.key, "migration_id": MID, "phase": phase, "run": run}
        match self.kind:
            case "lag":
                return PhaseProgressed(
                    **answers, rows_done=1, rows_total=0, lag_bytes=10, lag_seconds=0.5
                )
            case "success" | "success without result":
                result = RESULT if self.kind == "success" else None
                return PhaseSucceeded(**answers, rows_done=1, cutover=result)
            case "error" | "drift":
                kind = "schema_drifted" if self.kind == "drift" else None
                return PhaseErrored(**answers, reason="boom", kind=kind)
        return PhaseHalted(**answers, checkpoint="0/1")


steps = st.builds(
    Step,
    kind=st.sampled_from((*COMMANDS, *COMMANDS, CancelMigration, *RESULTS, *RESULTS)),
    key=st.sampled_from([f"x-{n}" for n in range(10)]),
    older=st.sampled_from((False, False, False, True)),
)


def syncing() -> tuple[MigrationState, list[Event]]:
    """A cdc migration started, its five phases done: SYNCING."""
    state, log = MigrationState(migration_id=MID), []
    start = StartMigration(command_id="c-start", migration_id=MID, spec=SPEC)
    for n in range(len(PHASES) + 1):
        given_input = start if n == 0 else Step("success", f"setup-{n}", False).resolve(state)
        for event in decide(state, given_input, AT):
            state = evolve(state, event)
            log.append(event)
    assert state.status is S.SYNCING
    return state, log


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(steps, max_size=40))
def test_random_inputs_keep_a_live_migrations_properties(plan: list[Step]) -> None:
    state, log = syncing()
    for step in plan:
        before, given_input = state, step.resolve(state)
        events = decide(before, given_input, AT)
        statuses = [before.status]
        for event in events:
            state = evolve(state, event)
            statuses.append(state.status)
            task = task_for(state, event)
            if isinstance(task, RunPhase):
                assert (task.cutover is not None) == (task.phase == "cutover"), task
        log += events
        for was, now in pairwise(statuses):
            assert was == now or (was, now) in ALLOWED, f"{was} -> {now} on {given_input}"
        fits = FITS.get(type(given_input))
        if fits is not None and events and before.status not in fits:
            assert [type(e) for e in events] == [CommandRejected], given_input

    assert [e.sequence for e in log] == list(range(1, len(log) + 1))
    assert replay(MID, log) == state
    for i, event in enumerate(log):
        if isinstance(event, MigrationCompleted):  # only ever after a cutover's result
            assert isinstance(log[i - 1], CutoverCompleted)

"""Properties of the domain over random sequences of inputs.

Each example brings two migrations to a random state (some phases done, then
running, pausing, paused, failed, completed or cancelled), leaves a third
unknown, and plays up to 40 random inputs against the three: commands of every
type, and phase results that mostly answer the current run and phase but are
sometimes stale. Ids come from small pools, so commands and results repeat,
and a few ids are shared by commands and results.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import (
    PHASES,
    CancelMigration,
    Command,
    CommandRejected,
    Event,
    Input,
    MigrationCancelled,
    MigrationPaused,
    MigrationPausing,
    MigrationResumed,
    MigrationRetried,
    MigrationSpec,
    MigrationStarted,
    MigrationState,
    PauseMigration,
    PhaseCompleted,
    PhaseErrored,
    PhaseFailed,
    PhaseHalted,
    PhaseProgressed,
    PhaseProgressRecorded,
    PhaseRequested,
    PhaseResult,
    PhaseSucceeded,
    ResumeMigration,
    RetryMigration,
    StartMigration,
    Status,
    decide,
    evolve,
    replay,
)

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)
AT = "2026-01-01T00:00:00.000+00:00"
MIGRATIONS = ("m-1", "m-2", "m-3")
COMMAND_IDS = tuple(f"c-{n}" for n in range(12))
RESULT_IDS = tuple(f"r-{n}" for n in range(4))
SHARED_IDS = ("x-1", "x-2")  # used by commands and results alike

# Every status change an event may cause; staying put is always allowed.
# COMPLETED and CANCELLED have no way out.
ALLOWED = {
    (Status.PENDING, Status.RUNNING),  # start
    (Status.RUNNING, Status.PAUSING),  # pause
    (Status.RUNNING, Status.COMPLETED),  # the last phase succeeded
    (Status.RUNNING, Status.FAILED),  # a phase errored
    (Status.RUNNING, Status.CANCELLED),
    (Status.PAUSING, Status.PAUSED),  # the phase halted, or succeeded
    (Status.PAUSING, Status.COMPLETED),  # the last phase succeeded while pausing
    (Status.PAUSING, Status.FAILED),
    (Status.PAUSING, Status.CANCELLED),
    (Status.PAUSED, Status.RUNNING),  # resume
    (Status.PAUSED, Status.CANCELLED),
    (Status.FAILED, Status.RUNNING),  # retry
    (Status.FAILED, Status.CANCELLED),
}

# The states each command fits, and the event it then starts with.
FITS: dict[type, tuple[set[Status], type]] = {
    StartMigration: ({Status.PENDING}, MigrationStarted),
    PauseMigration: ({Status.RUNNING}, MigrationPausing),
    ResumeMigration: ({Status.PAUSED}, MigrationResumed),
    RetryMigration: ({Status.FAILED}, MigrationRetried),
    CancelMigration: (
        {Status.RUNNING, Status.PAUSING, Status.PAUSED, Status.FAILED},
        MigrationCancelled,
    ),
}

# The event a result of the current run starts with. A halt is unasked for
# (ignored) unless the migration is pausing.
ANSWERS: dict[type, type] = {
    PhaseProgressed: PhaseProgressRecorded,
    PhaseSucceeded: PhaseCompleted,
    PhaseHalted: MigrationPaused,
    PhaseErrored: PhaseFailed,
}


@dataclass(frozen=True)
class Step:
    """An input, not yet resolved against the state of its migration."""

    kind: type
    migration: str
    command_id: str
    result_id: str
    stale: str  # "": the current run and phase; else how the result is off
    checkpoint: str | None

    def resolve(self, state: MigrationState) -> Input:
        if self.kind is StartMigration:
            return StartMigration(
                command_id=self.command_id, migration_id=self.migration, spec=SPEC
            )
        if self.kind in FITS:
            command: Command = self.kind(command_id=self.command_id, migration_id=self.migration)
            return command
        phase, run = state.phase or PHASES[0], state.run
        if self.stale in PHASES:
            phase = self.stale
        elif self.stale:
            run += {"older run": -1, "newer run": 1}[self.stale]
        return self._result(phase, run)

    def _result(self, phase: str, run: int) -> PhaseResult:
        rid, mid, cp = self.result_id, self.migration, self.checkpoint
        if self.kind is PhaseProgressed:
            return PhaseProgressed(
                result_id=rid,
                migration_id=mid,
                phase=phase,
                run=run,
                rows_done=10,
                rows_total=100,
                checkpoint=cp,
            )
        if self.kind is PhaseSucceeded:
            return PhaseSucceeded(
                result_id=rid, migration_id=mid, phase=phase, run=run, rows_done=100, score=0.9
            )
        if self.kind is PhaseHalted:
            return PhaseHalted(result_id=rid, migration_id=mid, phase=phase, run=run, checkpoint=cp)
        return PhaseErrored(
            result_id=rid, migration_id=mid, phase=phase, run=run, reason="boom", checkpoint=cp
        )


def weighted(*pairs: tuple[object, int]) -> tuple[object, ...]:
    return tuple(value for value, weight in pairs for _ in range(weight))


# Results come more often than commands, so migrations get deep into the phases.
KINDS = weighted(
    (PhaseSucceeded, 4),
    (PhaseProgressed, 2),
    (PhaseHalted, 2),
    (PhaseErrored, 1),
    *((command, 2) for command in FITS),
)
# Mostly the current run and phase; sometimes another run, or a named phase.
STALE = weighted(("", 8), ("older run", 1), ("newer run", 1), *((p, 1) for p in PHASES))

steps = st.builds(
    Step,
    kind=st.sampled_from(KINDS),
    migration=st.sampled_from(MIGRATIONS),
    command_id=st.sampled_from(COMMAND_IDS + SHARED_IDS),
    result_id=st.sampled_from(RESULT_IDS + SHARED_IDS),
    stale=st.sampled_from(STALE),
    checkpoint=st.sampled_from((None, "k-1", "k-2")),
)


# How a started migration that has not finished its phases gets to a state.
ROUTES: dict[str, tuple[type, ...]] = {
    "running": (),
    "pausing": (PauseMigration,),
    "paused": (PauseMigration, PhaseHalted),
    "failed": (PhaseErrored,),
    "cancelled": (CancelMigration,),
}


def prelude(mid: str, phases_done: int, route: str) -> list[Step]:
    """The inputs that start `mid`, finish some phases, then follow `route`."""
    finished = phases_done == len(PHASES)
    kinds = (StartMigration, *[PhaseSucceeded] * phases_done, *([] if finished else ROUTES[route]))
    return [Step(kind, mid, f"setup-{n}", "setup", "", "k-0") for n, kind in enumerate(kinds)]


@st.composite
def plans(draw: st.DrawFn) -> list[Step]:
    """Up to 40 random inputs, after the preludes of m-1 and m-2."""
    opening = []
    for mid in MIGRATIONS[:2]:
        phases_done = draw(st.integers(0, len(PHASES)))
        opening += prelude(mid, phases_done, draw(st.sampled_from(tuple(ROUTES))))
    size = draw(st.integers(0, 40))
    return opening + draw(st.lists(steps, min_size=size, max_size=size))


@dataclass(frozen=True)
class Turn:
    """One input handled: the state before, the events, the statuses passed."""

    given: Input
    before: MigrationState
    events: tuple[Event, ...]
    after: MigrationState
    statuses: tuple[Status, ...]


def play(plan: list[Step]) -> list[Turn]:
    states = {mid: MigrationState(migration_id=mid) for mid in MIGRATIONS}
    turns = []
    for step in plan:
        before = states[step.migration]
        given = step.resolve(before)
        events = decide(before, given, AT)
        state, statuses = before, [before.status]
        for event in events:
            state = evolve(state, event)
            statuses.append(state.status)
        states[step.migration] = state
        turns.append(Turn(given, before, events, state, tuple(statuses)))
    return turns


# Generating the inputs costs more than checking them, so one test plays each
# plan and checks every property on it.


@settings(max_examples=300, deadline=None, database=None)
@given(plans())
def test_random_inputs_keep_every_property(plan: list[Step]) -> None:
    turns = play(plan)

    sequences_run_from_1_without_gaps(turns)
    every_phase_request_has_a_new_run(turns)
    status_moves_only_along_allowed_edges(turns)
    replaying_the_events_rebuilds_the_same_state(turns)
    a_command_id_seen_before_causes_nothing(turns)
    a_new_command_is_accepted_or_rejected_as_its_state_allows(turns)
    a_rejected_command_changes_nothing_but_version_and_seen(turns)
    a_result_is_acted_on_once_and_only_in_its_run(turns)
    version_is_the_number_of_events_emitted(turns)
    every_event_names_its_cause(turns)
    seen_holds_the_command_ids_and_nothing_else(turns)


def sequences_run_from_1_without_gaps(turns: list[Turn]) -> None:
    for mid in MIGRATIONS:
        events = log(turns, mid)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert [e.event_id for e in events] == [f"{mid}:{e.sequence}" for e in events]
        assert {e.migration_id for e in events} <= {mid}


def every_phase_request_has_a_new_run(turns: list[Turn]) -> None:
    """So a result of an earlier run is always told apart from a current one."""
    for mid in MIGRATIONS:
        runs = [e.run for e in log(turns, mid) if isinstance(e, PhaseRequested)]
        assert runs == list(range(1, len(runs) + 1))


def status_moves_only_along_allowed_edges(turns: list[Turn]) -> None:
    for turn in turns:
        assert all(isinstance(s, Status) for s in turn.statuses)
        for was, now in pairwise(turn.statuses):
            assert was == now or (was, now) in ALLOWED, f"{was} -> {now} on {turn.given}"
        if turn.before.status in (Status.COMPLETED, Status.CANCELLED):
            assert turn.after.status is turn.before.status


def replaying_the_events_rebuilds_the_same_state(turns: list[Turn]) -> None:
    for mid in MIGRATIONS:
        assert replay(mid, log(turns, mid)) == final(turns, mid)


def a_command_id_seen_before_causes_nothing(turns: list[Turn]) -> None:
    for turn, repeated in commands(turns):
        if repeated:
            assert turn.events == (), f"{turn.given} had a second effect"


def a_new_command_is_accepted_or_rejected_as_its_state_allows(turns: list[Turn]) -> None:
    for turn, repeated in commands(turns):
        if repeated:
            continue
        fits, first = FITS[type(turn.given)]
        assert turn.events, f"{turn.given} was dropped"
        expected = first if turn.before.status in fits else CommandRejected
        assert type(turn.events[0]) is expected


def a_rejected_command_changes_nothing_but_version_and_seen(turns: list[Turn]) -> None:
    for turn in turns:
        if not any(isinstance(e, CommandRejected) for e in turn.events):
            continue
        assert isinstance(turn.given, Command)
        (event,) = turn.events
        assert isinstance(event, CommandRejected)
        assert event.reason and event.command_type == turn.given.type
        assert turn.after == replace(
            turn.before,
            version=turn.before.version + 1,
            seen=turn.before.seen | {turn.given.command_id},
        )


def a_result_is_acted_on_once_and_only_in_its_run(turns: list[Turn]) -> None:
    accepted: set[tuple[str, int, str]] = set()
    for turn in turns:
        result, s = turn.given, turn.before
        if not isinstance(result, PhaseResult):
            continue
        active = s.status in (Status.RUNNING, Status.PAUSING)
        current = active and (result.run, result.phase) == (s.run, s.phase)
        key = (result.migration_id, result.run, result.result_id)
        unasked = isinstance(result, PhaseHalted) and s.status is Status.RUNNING
        if not current or key in accepted or unasked:
            assert turn.events == (), f"{result} is stale, repeated or unasked for"
        else:
            first = turn.events[0] if turn.events else None
            assert type(first) is ANSWERS[type(result)], f"{result} was dropped"
            accepted.add(key)


def version_is_the_number_of_events_emitted(turns: list[Turn]) -> None:
    emitted = dict.fromkeys(MIGRATIONS, 0)
    for turn in turns:
        emitted[turn.given.migration_id] += len(turn.events)
        assert turn.after.version == emitted[turn.given.migration_id]


def every_event_names_its_cause(turns: list[Turn]) -> None:
    for turn in turns:
        assert {e.causation_id for e in turn.events} <= {input_id(turn.given)}
        assert {e.occurred_at for e in turn.events} <= {AT}


def seen_holds_the_command_ids_and_nothing_else(turns: list[Turn]) -> None:
    for mid in MIGRATIONS:
        sent = {
            t.given.command_id
            for t in turns
            if isinstance(t.given, Command) and t.given.migration_id == mid
        }
        assert final(turns, mid).seen == sent


# Reading the turns.


def log(turns: list[Turn], mid: str) -> list[Event]:
    return [e for t in turns if t.given.migration_id == mid for e in t.events]


def final(turns: list[Turn], mid: str) -> MigrationState:
    mine = [t.after for t in turns if t.given.migration_id == mid]
    return mine[-1] if mine else MigrationState(migration_id=mid)


def input_id(given: Input) -> str:
    return given.result_id if isinstance(given, PhaseResult) else given.command_id


def commands(turns: list[Turn]) -> Iterator[tuple[Turn, bool]]:
    """Each command's turn, and whether its migration saw its id before."""
    seen: set[tuple[str, str]] = set()
    for turn in turns:
        if isinstance(turn.given, Command):
            key = (turn.given.migration_id, turn.given.command_id)
            yield turn, key in seen
            seen.add(key)

"""Which RunPhase starts a run on a phase worker, given what runs there: an
owner's task replaces an older owner's run and starts beside an assist; an
assist starts only where its migration's owner does not run (replacing an
older assist) and never for a run older than the latest seen."""

from __future__ import annotations

from domain import MigrationSpec, RunPhase
from streams.dataplane.scheduler import admits

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="t",
    source_key="id",
    target_connection="warehouse",
    target_table="t",
)


def task(run: int, *, assist: bool = False) -> RunPhase:
    return RunPhase(
        task_id=f"m-1:{run}", migration_id="m-1", phase="extract", run=run, spec=SPEC, assist=assist
    )


def owner(run: int) -> RunPhase:
    return task(run)


def assist(run: int) -> RunPhase:
    return task(run, assist=True)


def test_an_owners_task_starts_where_no_owner_runs_whatever_was_seen() -> None:
    assert admits(owner(2), None, None, latest=0)
    assert admits(owner(2), None, None, latest=5)  # answered from its checkpoints


def test_an_owners_task_replaces_an_older_owners_run_but_not_its_own_or_a_newer_one() -> None:
    assert admits(owner(3), owner(2), None, latest=2)
    assert not admits(owner(3), owner(3), None, latest=3)
    assert not admits(owner(3), owner(4), None, latest=4)


def test_an_owners_task_starts_beside_an_assist() -> None:
    assert admits(owner(3), None, assist(3), latest=3)
    assert admits(owner(3), None, assist(2), latest=2)


def test_an_assist_starts_where_its_migration_does_not_run() -> None:
    assert admits(assist(3), None, None, latest=0)
    assert admits(assist(3), None, None, latest=3)  # the same run again: it helps again


def test_a_stale_assist_is_ignored() -> None:
    assert not admits(assist(2), None, None, latest=3)


def test_an_assist_is_ignored_where_the_owner_runs_whatever_its_run() -> None:
    assert not admits(assist(3), owner(3), None, latest=3)
    assert not admits(assist(4), owner(3), None, latest=3)
    assert not admits(assist(2), owner(3), None, latest=3)


def test_an_assist_replaces_an_older_assist_only() -> None:
    assert admits(assist(4), None, assist(3), latest=3)
    assert not admits(assist(3), None, assist(3), latest=3)
    assert not admits(assist(3), None, assist(4), latest=4)

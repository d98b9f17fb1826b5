"""A chunked copy of a live table is exact under kill -9.

A million-row source table takes inserts, updates, deletes and re-keys at a
steady rate, in small transactions, while it is migrated (copy only: the
identity mapping, no rules, parallelism 2) through the running processes;
every phase worker is SIGKILLed and restarted several times mid-copy, each
time once more chunks have committed. Then:

1. the target equals the source as of the migration's snapshot, row by row
   (a trigger kept every row version with the transactions that wrote and
   ended it: the snapshot's `pg_current_snapshot()` says which it saw);
2. the migration completed (reconciled) in the one snapshot it began in,
   taken before the first kill;
3. every chunk committed once, and the attempts redone are no more than the
   chunks the kills could cut short.

LIVE_COPY_ROWS (1000000), LIVE_COPY_KILLS (3), LIVE_COPY_CHUNK (rows a
chunk, 5000), LIVE_COPY_STEP (chunks committed between kills, 3) and
LIVE_COPY_WRITES (the writer's statements a second, 200) size the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest

from cli.topics import create_topics
from config import KafkaNames, Settings
from tests.support import chunk_log
from tests.support.as_of import as_of, diff, rows_of, unkept_writes, unseen_versions
from tests.support.data_plane import DataPlane, connections_env, spec
from tests.support.live_table import create_live_table, writing
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.stack import Stack
from tests.support.tables import connection_for, fresh_database

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]
ROWS = int(os.environ.get("LIVE_COPY_ROWS", "1000000"))
KILLS = int(os.environ.get("LIVE_COPY_KILLS", "3"))
CHUNK = int(os.environ.get("LIVE_COPY_CHUNK", "5000"))
STEP = int(os.environ.get("LIVE_COPY_STEP", "3"))
RATE = float(os.environ.get("LIVE_COPY_WRITES", "200"))
TABLE, MIGRATION = "live", "m-live"
PARALLELISM = 2
PHASE_WORKERS = ("p0", "p1")
# Each phase worker has at most PHASE_CONCURRENCY chunks in flight, which is
# the spec's parallelism too, and every kill takes all the phase workers: one
# kill cuts short at most parallelism x phase workers chunk attempts.
PHASE_ENV = {"PHASE_CONCURRENCY": str(PARALLELISM), "WORKER_SESSION_TIMEOUT_MS": "6000"}
IN_FLIGHT = PARALLELISM * len(PHASE_WORKERS)


@pytest.fixture
def databases(stack: Stack, unique: str) -> Iterator[tuple[str, str]]:
    with (
        fresh_database(stack.database_url, f"src_{unique}") as source,
        fresh_database(stack.database_url, f"tgt_{unique}") as target,
    ):
        create_live_table(source, TABLE, ROWS)
        yield source, target


@pytest.fixture
def plane(settings: Settings, tmp_path: Path, databases: tuple[str, str]) -> Iterator[DataPlane]:
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    create_topics(settings)
    procs = Processes(settings, tmp_path)
    procs.start("worker")
    start_phase_workers(procs, databases)
    bootstrap = settings.kafka.bootstrap_servers
    eventually(lambda: group_is_stable(bootstrap, settings.kafka.app_id), 120)
    eventually(lambda: group_is_stable(bootstrap, names.phase_worker_group, 2), 120)
    plane = DataPlane(settings, names, procs)
    yield plane
    plane.close()
    procs.stop_all()


def start_phase_workers(procs: Processes, databases: tuple[str, str]) -> None:
    source, target = databases
    env = connections_env({"legacy": connection_for(source), "warehouse": connection_for(target)})
    for name in PHASE_WORKERS:
        procs.start(name, "phase-worker", {**env, **PHASE_ENV, "PHASE_WORKER_ID": name})


def kill_mid_copy(plane: DataPlane, databases: tuple[str, str]) -> list[datetime]:
    """SIGKILL every phase worker once STEP more chunks have committed, and
    restart them, KILLS times (fewer if the copy ends first): the target's
    clock at each kill that left the copy unfinished."""
    target, kills = databases[1], list[datetime]()
    since = chunk_log.clock(target)
    while len(kills) < KILLS:
        eventually(partial(copied_or_advanced, target, since), timeout=180, every=0.05)
        if copied(target):
            break
        for name in PHASE_WORKERS:
            plane.procs.kill(name)
        since = chunk_log.clock(target)
        if not copied(target):
            kills.append(since)
        start_phase_workers(plane.procs, databases)
    return kills


def copied_or_advanced(target: str, since: datetime) -> bool:
    return copied(target) or chunk_log.committed_since(target, MIGRATION, since) >= STEP


def copied(target: str) -> bool:
    return chunk_log.extract_done(target, MIGRATION)


def test_a_chunked_copy_of_a_live_table_is_exact_under_kill_9(
    plane: DataPlane, databases: tuple[str, str]
) -> None:
    source, target = databases
    copy_only = spec(
        source_table=TABLE,
        target_table=TABLE,
        batch_size=CHUNK,
        parallelism=PARALLELISM,
        mode="copy-only",
    )
    with writing(source, TABLE, ROWS, RATE) as writer:
        plane.start(MIGRATION, copy_only)
        kills = kill_mid_copy(plane, databases)
        state = plane.wait_for(MIGRATION, "COMPLETED", "FAILED", timeout=300)
    assert writer.error is None, writer.error
    logs = {name: plane.procs.log(name)[-2000:] for name in PHASE_WORKERS}
    assert state.status.value == "COMPLETED", (state.reason, logs)
    assert len(kills) == KILLS, f"the copy ended after {len(kills)} kills: make it longer"
    checkpoints = chunk_log.extract_checkpoints(target, MIGRATION)
    snapshot = checkpoints[0][1]["snapshot"]
    committed = chunk_log.commits(target, MIGRATION)
    print(f"\n{writer.statements} writes: {dict(writer.tally)}")
    print(f"{len(committed.per_slice)} chunks committed by {dict(committed.per_worker)}")

    # 1. The target is the source as the snapshot saw it, every row, every column.
    found = diff(as_of(source, TABLE, snapshot["xids"]), rows_of(target, TABLE))
    assert found.same, str(found)
    assert unkept_writes(source, TABLE) == 0  # the history kept every write
    assert committed.last is not None
    assert unseen_versions(source, TABLE, snapshot["xids"], committed.last) > 0  # it was live
    assert committed.rows == found.rows["expected"]
    figures = chunk_log.reconciled(target, MIGRATION)
    assert figures is not None
    assert figures["source_rows"] == figures["target_rows"] == found.rows["expected"]

    # 2. One snapshot, taken before the first kill and held through them all.
    restarted = [position["restarted"] for _, position, _ in checkpoints if "restarted" in position]
    assert not restarted, restarted
    assert {position["snapshot"]["id"] for _, position, _ in checkpoints} == {snapshot["id"]}
    assert datetime.fromisoformat(snapshot["taken_at"]) < kills[0]

    # 3. Every chunk committed once; redone only what the kills cut short.
    attempts = chunk_log.attempts(target, MIGRATION)
    redone = chunk_log.redone_by_kill(attempts, kills)
    for i, at in enumerate(kills):
        print(f"kill {i + 1} at {at:%H:%M:%S.%f}: redone {describe(redone.get(i, []))}")
    print(f"redone with no kill between: {describe(redone.get(None, []))}")
    assert set(committed.per_slice.values()) == {1}, committed.per_slice
    assert {a.slice for a in attempts} == set(committed.per_slice)
    assert all(len(redone.get(i, [])) <= IN_FLIGHT for i in range(len(kills))), redone
    assert sum(map(len, redone.values())) <= len(kills) * IN_FLIGHT, redone


def describe(attempts: list[chunk_log.Attempt]) -> str:
    chunks = ", ".join(f"slice {a.slice} ({a.worker})" for a in attempts)
    return f"{len(attempts)} chunk attempts" + (f": {chunks}" if chunks else "")

"""A live table is migrated with change capture and cut over, exactly, while
it is written and its phase workers are killed.

The source (a cluster of its own with wal_level=logical) takes inserts,
updates (of large TOASTed values, and of other columns beside them, which
leave them TOAST-unchanged) and deletes at a steady rate from before the
start to the cutover's freeze, through the copy and the sync. During the
sync every phase worker is SIGKILLed and restarted several times, each time
once more changes were applied. Then CutoverMigration with `freeze`; once
CutoverCompleted:

1. the target equals the source row by row (an md5 of each row's text, by key);
2. the change log shows every change applied once: the target's trigger log
   holds, key by key and in order, the version the copy's snapshot saw and
   then every source change the snapshot did not see, each exactly once
   (tests.support.change_log), and the data plane's own count of applied
   changes is the number of those changes;
3. writes reached the cutover (the freeze stopped the writer), and the
   kills hit a sync that still had work.

LIVE_CUTOVER_ROWS (5000), LIVE_CUTOVER_KILLS (3), LIVE_CUTOVER_STEP (changes
applied between kills, 200) and LIVE_CUTOVER_WRITES (the writer's statements
a second, 150) size the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import psycopg
import pytest

from cli.topics import create_topics
from config import KafkaNames, Settings
from domain import CutoverCompleted, CutoverMigration, Status
from tests.support import change_log
from tests.support.cdc import cdc_spec
from tests.support.chunk_log import extract_checkpoints
from tests.support.data_plane import DataPlane, connections_env
from tests.support.pg_cluster import Cluster
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.stack import Stack
from tests.support.tables import connection_for, fresh_database

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]
ROWS = int(os.environ.get("LIVE_CUTOVER_ROWS", "5000"))
KILLS = int(os.environ.get("LIVE_CUTOVER_KILLS", "3"))
STEP = int(os.environ.get("LIVE_CUTOVER_STEP", "200"))
RATE = float(os.environ.get("LIVE_CUTOVER_WRITES", "150"))
MIGRATION = "m-live-cutover"
PHASE_WORKERS = ("p0", "p1")
PHASE_ENV = {"WORKER_SESSION_TIMEOUT_MS": "6000"}


@pytest.fixture
def databases(crashable: Cluster, stack: Stack, unique: str) -> Iterator[tuple[str, str]]:
    with (
        crashable.database(f"live_{unique}") as source,
        fresh_database(stack.database_url, f"tgt_{unique}") as target,
    ):
        change_log.create_source(source, ROWS)
        change_log.create_target(target)
        yield source, target
        with psycopg.connect(source, autocommit=True) as conn:  # a slot keeps its database
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = current_database()"
            )


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


def applied_since(target: str, since: int) -> int | None:
    now = change_log.applied_changes(target, MIGRATION)
    return now if now >= since + STEP else None


def kill_during_sync(plane: DataPlane, databases: tuple[str, str]) -> list[int]:
    """SIGKILL every phase worker once STEP more changes were applied, and
    restart them, KILLS times: the changes applied at each kill."""
    target, at = databases[1], list[int]()
    since = change_log.applied_changes(target, MIGRATION)
    for _ in range(KILLS):
        eventually(partial(applied_since, target, since), timeout=120, every=0.1)
        for name in PHASE_WORKERS:
            plane.procs.kill(name)
        since = change_log.applied_changes(target, MIGRATION)
        at.append(since)
        state = plane.state(MIGRATION)
        assert state.status is Status.SYNCING, state.reason
        start_phase_workers(plane.procs, databases)
    return at


def test_a_live_table_is_cut_over_exactly_under_load_and_kill_9(
    plane: DataPlane, databases: tuple[str, str]
) -> None:
    source, target = databases
    spec = cdc_spec(batch_size=1000, on_existing="append")
    with change_log.writing(source, ROWS, RATE) as writer:
        plane.start(MIGRATION, spec)
        syncing = plane.wait_for(MIGRATION, "SYNCING", "FAILED", "PAUSED", timeout=240)
        assert syncing.status is Status.SYNCING, syncing.reason
        written_in_copy = writer.statements
        kills = kill_during_sync(plane, databases)
        plane.send(
            CutoverMigration(
                command_id="c-cutover",
                migration_id=MIGRATION,
                max_lag_bytes=0,
                max_lag_seconds=0,
                freeze=True,
            )
        )
        done = plane.wait_for(MIGRATION, "COMPLETED", "FAILED", "PAUSED", timeout=240)
    logs = {name: plane.procs.log(name)[-2000:] for name in PHASE_WORKERS}
    assert done.status is Status.COMPLETED, (done.reason, logs)
    assert writer.error is None, writer.error
    assert writer.frozen, "the writer was still writing when the source was frozen"
    (completed,) = [e for e in plane.events()[MIGRATION] if isinstance(e, CutoverCompleted)]
    result = completed.result
    print(f"\nwrites: {dict(writer.tally)}; {written_in_copy} statements before SYNCING")
    print(f"kills at {kills} changes applied; cutover: {result}")

    # 1. Row by row: every key and an md5 of the whole row's text.
    source_rows = list(change_log.row_digests(source, "items"))
    assert list(change_log.row_digests(target, "items_copy")) == source_rows
    assert result.source_rows == result.target_rows == len(source_rows)
    assert result.source_checksum == result.target_checksum

    # 2. Every change since the snapshot applied once, in order, key by key.
    ((_, position, _), *_) = extract_checkpoints(target, MIGRATION)
    found = change_log.logs(source, target, position["snapshot"]["xids"])
    differing = found.differing()
    assert not differing, f"{len(differing)} keys, e.g. {list(differing.items())[:5]}"
    assert result.changes_applied == found.after_snapshot
    assert change_log.applied_changes(target, MIGRATION) == found.after_snapshot
    print(f"{found.loaded} rows copied, {found.after_snapshot} changes applied: {found.kinds()}")

    # 3. The load was live through copy, sync and kills.
    assert written_in_copy > 0 and found.after_snapshot > kills[-1] > 0
    assert writer.tally["update beside a large value"] > 0
    assert writer.tally["update of a large value"] > 0 and writer.tally["delete"] > 0

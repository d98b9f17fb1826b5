"""Benchmark: a live migration through the running processes, its change
capture against the source's writes, and its cutover under load.

    .local/venv/bin/python scripts/bench/cdc.py
    .local/venv/bin/python scripts/bench/cdc.py --rows 10000 --changes 20000 --rate 200 --steady 10

A source cluster of its own with wal_level=logical (scripts/pg/server in a
throwaway folder, stopped and removed at the end), the target database in
the local stack's PostgreSQL (DATABASE_URL), an orchestrator worker and a
phase worker as processes on the local broker (KAFKA_BOOTSTRAP_SERVERS),
topics of the run's own. The source table `items` (tests.support.change_log:
a TOASTed large value on one row in ten, every change logged by a trigger)
is migrated with `cdc` on until SYNCING. Then:

1. apply throughput: the migration is paused; `--changes` changes are
   written as fast as one connection can (3 inserts, an update and a delete
   a transaction: the write rate); it is resumed, and the sync applies the
   backlog (the apply rate: changes over the time from the first applied
   to the last, read from the target's migrator_state.cdc_positions every
   0.05 s; and from the resume command, scheduling included).
2. cutover under load: a writer at `--rate` statements a second (inserts,
   updates of large values and beside them, deletes) for `--steady` seconds
   while the sync keeps up (its lag sampled from the event log), then
   CutoverMigration with freeze and no lag allowed. The lag at that moment
   (the slot's WAL bytes behind, the changes written and not yet applied,
   and the last lag the sync reported), then the time from the command to
   CutoverRequested and to CutoverCompleted (the events' timestamps; one
   machine, one clock).

Figures print before anything is cleaned up; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from cli.topics import create_topics  # noqa: E402
from config import KafkaNames, Settings, load_settings  # noqa: E402
from domain import CutoverCompleted, CutoverMigration, CutoverRequested  # noqa: E402
from tests.support import change_log  # noqa: E402
from tests.support.cdc import cdc_spec  # noqa: E402
from tests.support.chunk_log import extract_checkpoints  # noqa: E402
from tests.support.data_plane import DataPlane, data_plane  # noqa: E402
from tests.support.pg_cluster import own_cluster  # noqa: E402
from tests.support.processes import eventually  # noqa: E402
from tests.support.tables import connection_for, fresh_database  # noqa: E402

MIGRATION = "bench-cdc"
PER_TRANSACTION = 5
SLOT_LAG = """
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
FROM pg_replication_slots WHERE database = current_database()
"""
WRITTEN = "SELECT count(*) FROM item_changes WHERE NOT pg_visible_in_snapshot(xid, %s::pg_snapshot)"


def burst(url: str, changes: int, keys: int) -> float:
    """Write `changes` changes on one connection (3 inserts, an update and a
    delete a transaction); the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        for i in range(changes // PER_TRANSACTION):
            with conn.transaction():
                conn.execute(
                    "INSERT INTO items (name, n) VALUES ('w', %s), ('w', %s), ('w', %s)",
                    (i, i, i),
                )
                conn.execute("UPDATE items SET n = n + 1 WHERE id = %s", (i % keys + 1,))
                conn.execute("DELETE FROM items WHERE id = (SELECT max(id) FROM items)")
    return time.perf_counter() - started


def applied(target: str) -> int:
    return change_log.applied_changes(target, MIGRATION)


def throughput(plane: DataPlane, source: str, target: str, args: argparse.Namespace) -> None:
    plane.pause(MIGRATION)
    plane.wait_for(MIGRATION, "PAUSED", timeout=120)
    before = applied(target)
    wrote = burst(source, args.changes, args.rows)
    written = args.changes // PER_TRANSACTION * PER_TRANSACTION
    resumed = time.perf_counter()
    plane.resume(MIGRATION)
    first = last = None
    while (now := applied(target)) < before + written:
        if first is None and now > before:
            first = time.perf_counter()
        time.sleep(0.05)
    last = time.perf_counter()
    first = first or last
    print(f"\n1. apply throughput ({written:,} changes written while paused, then resumed)")
    print(
        f"   source write rate:  {written / wrote:9,.0f} changes/s ({wrote:.1f} s, one connection)"
    )
    print(f"   apply rate:         {written / (last - first):9,.0f} changes/s", end="")
    print(f" ({last - first:.1f} s from the first applied to the last)")
    print(f"   from the resume:    {written / (last - resumed):9,.0f} changes/s", end="")
    print(f" ({last - resumed:.1f} s, scheduling of the sync task included)")
    print(f"   apply / write:      {wrote / (last - first):9.2f}")


def cutover(plane: DataPlane, source: str, target: str, args: argparse.Namespace) -> None:
    ((_, position, _), *_) = extract_checkpoints(target, MIGRATION)
    xids = position["snapshot"]["xids"]
    lags: list[int] = []
    with change_log.writing(source, args.rows, args.rate) as writer:
        steady_until = time.monotonic() + args.steady
        counted = writer.statements
        while time.monotonic() < steady_until:
            state = plane.state(MIGRATION)
            if state.lag_bytes is not None:
                lags.append(state.lag_bytes)
            time.sleep(0.5)
        written_rate = (writer.statements - counted) / args.steady
        state = plane.state(MIGRATION)
        with psycopg.connect(source, autocommit=True) as conn:
            slot_lag = conn.execute(SLOT_LAG).fetchone()
            pending = conn.execute(WRITTEN, (xids,)).fetchone()
        pending_changes = (pending[0] if pending else 0) - applied(target)
        sent = datetime.now(UTC)
        plane.send(
            CutoverMigration(
                command_id=f"c-{uuid.uuid4().hex[:8]}",
                migration_id=MIGRATION,
                max_lag_bytes=0,
                max_lag_seconds=0,
                freeze=True,
            )
        )
        done = plane.wait_for(MIGRATION, "COMPLETED", "FAILED", "PAUSED", timeout=args.timeout)
    events = plane.events()[MIGRATION]
    print(f"\n2. cutover under load ({args.rate:.0f} statements/s asked, {written_rate:.0f} made)")
    if lags:
        print(f"   lag while syncing:  p50 {statistics.median(lags):,.0f} B, max {max(lags):,} B")
    print(
        f"   lag at the command: {slot_lag[0] if slot_lag else '?'} B of WAL behind (slot),", end=""
    )
    print(f" {pending_changes} changes written and not yet applied;", end="")
    print(f" last reported {state.lag_bytes} B, {state.lag_seconds} s")
    if done.status.value != "COMPLETED":
        print(f"   the cutover did not complete: {done.status.value} {done.reason}")
        return
    requested = next(e for e in events if isinstance(e, CutoverRequested))
    completed = next(e for e in events if isinstance(e, CutoverCompleted))
    to_request = (datetime.fromisoformat(requested.occurred_at) - sent).total_seconds()
    took = (datetime.fromisoformat(completed.occurred_at) - sent).total_seconds()
    result = completed.result
    print(f"   CutoverMigration -> CutoverRequested: {to_request:.3f} s")
    print(f"   CutoverMigration -> CutoverCompleted: {took:.2f} s", end="")
    print(f" ({took - to_request:.2f} s in the cutover phase and its answer)")
    equal = result.source_checksum == result.target_checksum
    print(f"   writer frozen: {writer.frozen}; changes applied in all: {result.changes_applied:,};")
    print(f"   rows verified: {result.rows_verified:,}; source and target checksums equal: {equal}")


def delete_topics(settings: Settings) -> None:
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    ours = {t.name for t in names.topic_specs(settings.kafka.topic_partitions)}
    there = ours & set(admin.list_topics(timeout=30).topics)
    for future in admin.delete_topics(sorted(there), operation_timeout=30).values():
        future.result()


def bench(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    settings = load_settings().replace(
        kafka={"topic_prefix": f"bench{run}.", "app_id": f"bench-{run}"}
    )
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    admin = settings.database.url.get_secret_value()
    with (
        own_cluster() as cluster,
        cluster.database(f"bench_cdc_{run}") as source,
        fresh_database(admin, f"bench_cdc_tgt_{run}") as target,
        tempfile.TemporaryDirectory() as logs,
    ):
        change_log.create_source(source, args.rows)
        create_topics(settings)
        connections = {"legacy": connection_for(source), "warehouse": connection_for(target)}
        try:
            with data_plane(settings, names, Path(logs), connections) as plane:
                started = time.perf_counter()
                plane.start(MIGRATION, cdc_spec(batch_size=5000))
                state = plane.wait_for(MIGRATION, "SYNCING", "FAILED", timeout=args.timeout)
                print(
                    f"copy of {args.rows:,} rows to SYNCING: {time.perf_counter() - started:.1f} s"
                )
                if state.status.value != "SYNCING":
                    print(f"not syncing: {state.status.value} {state.reason}")
                    return
                eventually(lambda: plane.state(MIGRATION).position)
                throughput(plane, source, target, args)
                cutover(plane, source, target, args)
        finally:
            with psycopg.connect(source, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    " WHERE database = current_database() AND NOT active"
                )
            delete_topics(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the source table")
    parser.add_argument("--changes", type=int, default=20_000, help="the backlog of part 1")
    parser.add_argument("--rate", type=float, default=200, help="statements/s of part 2's writer")
    parser.add_argument("--steady", type=float, default=10, help="seconds of load before cutover")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a wait may take")
    bench(parser.parse_args())


if __name__ == "__main__":
    main()

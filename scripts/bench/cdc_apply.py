"""Benchmark: change capture's apply throughput against the source's write rate.

    .local/venv/bin/python scripts/bench/cdc_apply.py                   # 20,000 changes
    .local/venv/bin/python scripts/bench/cdc_apply.py --changes 50000

A source cluster of its own with wal_level=logical (scripts/pg/server in a
throwaway folder, stopped and removed at the end) and a target database in
the local stack's PostgreSQL (DATABASE_URL). A table of 10,000 rows is copied
with `cdc` on; then the source is written as fast as one connection can
(inserts, updates and deletes, 5 changes per transaction: the write rate),
and the written changes are applied to the target by capture steps (the apply
rate). Prints both, their ratio and the slot's lag before apply; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from streams.dataplane.cdc.capture import Capture  # noqa: E402
from streams.dataplane.context import Finished  # noqa: E402
from tests.support.cdc import catch_up, cdc_spec, create_items, rows  # noqa: E402
from tests.support.pg_cluster import own_cluster  # noqa: E402
from tests.support.phases import legacy_and_warehouse, phase_context, run_phase  # noqa: E402
from tests.support.tables import fresh_database  # noqa: E402

PER_TRANSACTION = 5


def write(url: str, changes: int) -> float:
    """Write `changes` changes (3 inserts, an update, a delete per
    transaction); the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        for i in range(changes // PER_TRANSACTION):
            with conn.transaction():
                conn.execute(
                    "INSERT INTO items (name, n) VALUES ('w', %s), ('w', %s), ('w', %s)",
                    (i, i, i),
                )
                conn.execute("UPDATE items SET n = n + 1 WHERE id = %s", (i % 10_000 + 1,))
                conn.execute("DELETE FROM items WHERE id = (SELECT max(id) FROM items)")
    return time.perf_counter() - started


async def bench(changes: int) -> None:
    admin = os.environ.get("DATABASE_URL", "postgresql://migrator@127.0.0.1:35432/migrations")
    name = f"bench_cdc_{uuid.uuid4().hex[:8]}"
    with (
        own_cluster() as cluster,
        cluster.database(name) as source,
        fresh_database(admin, name) as target,
    ):
        create_items(source, 10_000)
        async with legacy_and_warehouse(source, target) as dbs:
            for phase in ("extract", "transform", "validate", "load", "reconcile"):
                assert isinstance(
                    await run_phase(dbs, cdc_spec(), phase, migration_id=name), Finished
                )
            wrote = write(source, changes)
            capture = await Capture.open(await phase_context(dbs, cdc_spec(), "sync", 1, name))
            lag = await dbs.get("legacy")
            started = time.perf_counter()
            stepped = await catch_up(capture, source)
            applied = time.perf_counter() - started
            equal = rows(source, "items") == rows(target, "items_copy")
            await lag.autocommit(
                lambda c: c.execute("SELECT pg_drop_replication_slot(%s)", (capture.slot,))
            )
        made = stepped.position.changes
        print(f"changes written: {made} in {stepped.position.transactions} transactions")
        print(f"source write rate: {made / wrote:,.0f} changes/s ({wrote:.1f} s, one connection)")
        print(f"apply rate:        {made / applied:,.0f} changes/s ({applied:.1f} s)")
        print(f"apply / write:     {wrote / applied:.2f}")
        print(f"target equals source row by row: {equal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20_000)
    asyncio.run(bench(parser.parse_args().changes))


if __name__ == "__main__":
    main()

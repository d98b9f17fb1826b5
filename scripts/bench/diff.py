"""Benchmark: the row-level diff (checksum bisection) of two equal tables,
against a full checksum scan of both, in one run on one database server.

    .local/venv/bin/python scripts/bench/diff.py                  # 1,000,000 rows
    .local/venv/bin/python scripts/bench/diff.py --rows 3000000 --repeat 5

1. Two fresh databases get the same N customers (every kind of column:
   text, numeric, float, dates, arrays, jsonb, bytea; NULLs), with their
   primary key, vacuumed and analyzed.
2. Peer: a full checksum scan of both tables at once, the sum of every row's
   hash with each column hashed as the diff hashes it (count and sum, one
   sequential scan per side): what a whole-table compare costs at least.
3. The diff, as the `diff` phase runs it (streams.dataplane.diff.compare):
   bounds, then one bucketed sum per side; nothing differs, so nothing is
   cut further.
4. With `--differ K` (default 10), K rows of the target spread over the key
   range are changed, and the diff is timed again: the cost of bisecting down
   to them (the ranges compared, the keys found).

Each is run --repeat times, alternating, after one warm-up of each; the
median is reported, per million rows and as a ratio. Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support

from domain import MigrationSpec
from streams.dataplane import checksums, diff
from streams.dataplane.context import PhaseContext
from streams.dataplane.database import Databases
from streams.dataplane.sql import table
from tests.support.phases import legacy_and_warehouse, phase_context
from tests.support.tables import create_customers, fresh_database

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)


async def scan(ctx: PhaseContext, shape: diff.Mapped) -> tuple[int, int]:
    """Count and checksum of both tables at once, each in one statement."""

    async def one(side: str) -> tuple[int, int]:
        db = ctx.source if side == "source" else ctx.target
        values = diff.source_values(shape) if side == "source" else diff.target_values(shape)
        query = checksums.figures(list(values.values()), shape.native, table("customers"))
        async with db.connection() as conn, conn.transaction():
            await diff.pinned(conn)
            row = await (await conn.execute(query)).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    (rows, mine), (_, theirs) = await asyncio.gather(one("source"), one("target"))
    assert mine == theirs, "the tables differ"
    return rows, mine


async def timed(work: Awaitable[object]) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def measure(dbs: Databases, rows: int, repeat: int, differ: int) -> None:
    ctx = await phase_context(dbs, SPEC, "diff", migration_id="bench-diff")
    shape = await diff.mapped(ctx)
    await scan(ctx, shape)  # warm-up, both
    found, _, _ = await diff.compare(ctx, shape)
    assert found.counts() == {"missing": 0, "extra": 0, "different": 0}, found.counts()
    scans, diffs = [], []
    for _ in range(repeat):
        scans.append(await timed(scan(ctx, shape)))
        diffs.append(await timed(diff.compare(ctx, shape)))
    scan_s, diff_s = statistics.median(scans), statistics.median(diffs)
    million = rows / 1_000_000
    print(f"rows: {rows:,}  ranges compared: {found.ranges_compared}  runs: {repeat}")
    print(f"full checksum scan of both: {scan_s:.2f} s  ({scan_s / million:.2f} s per million)")
    print(f"diff (bisection, equal):    {diff_s:.2f} s  ({diff_s / million:.2f} s per million)")
    print(f"diff / scan: {diff_s / scan_s:.2f}")
    print(f"all runs, s: scan {[round(s, 2) for s in scans]} diff {[round(d, 2) for d in diffs]}")
    print(f"load average: {os.getloadavg()}")
    if differ:
        await measure_differing(ctx, shape, rows, differ)


async def measure_differing(ctx: PhaseContext, shape: diff.Mapped, rows: int, k: int) -> None:
    """Change `k` target rows spread over the keys; time the diff that finds them."""
    step = max(1, rows // max(1, k))
    async with ctx.target.connection() as conn:
        await conn.execute(
            "UPDATE customers SET name = coalesce(name, '') || '!' WHERE id %% %s = 1 AND id <= %s",
            (step, step * k),
        )
    took = []
    for _ in range(2):
        started = time.perf_counter()
        found, _, _ = await diff.compare(ctx, shape)
        took.append(time.perf_counter() - started)
    print(
        f"diff with {len(found.different)} rows differing: {min(took):.2f} s"
        f"  ({found.ranges_compared} ranges compared; runs {[round(t, 2) for t in took]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--differ", type=int, default=10, help="then change K rows and diff")
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL", "postgresql://migrator@127.0.0.1:35432/migrations")
    suffix = f"{os.getpid()}"
    with (
        fresh_database(admin, f"bench_diff_src_{suffix}") as source,
        fresh_database(admin, f"bench_diff_tgt_{suffix}") as target,
    ):
        for url in (source, target):
            started = time.perf_counter()
            create_customers(url, args.rows)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE customers")
            print(f"made {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        asyncio.run(_run(source, target, args.rows, args.repeat, args.differ))


async def _run(source: str, target: str, rows: int, repeat: int, differ: int) -> None:
    async with legacy_and_warehouse(source, target) as dbs:
        await measure(dbs, rows, repeat, differ)


if __name__ == "__main__":
    main()

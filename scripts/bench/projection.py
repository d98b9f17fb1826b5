"""Benchmark: the projector (migration.events -> PostgreSQL read model) in
events/s, against a raw COPY of the same rows into the same table shapes, in
one run on one broker and one database.

    .local/venv/bin/python scripts/bench/projection.py                # the local stack
    .local/venv/bin/python scripts/bench/projection.py --events 100000 --batch 2000

1. N events (whole migration histories: started, five phases with progress,
   completed; interleaved so that each batch touches many migrations) are
   produced to a fresh topic before the projector starts.
2. The projector (the same class `python -m projections` runs) projects them
   into a fresh database; events/s counts from the start of its first batch to
   the commit of its last (start-up and group join excluded).
3. Peer: the rows the projector wrote (history, migrations, phases, offsets) are
   COPYed out and COPYed into empty tables `LIKE` them (same columns, indexes
   and keys), in one transaction; events/s = N / that time. The peer runs
   `--peer-runs` times (emptied between runs); its median counts.

Besides wall-clock rates, both sides' CPU per event is printed: this
process's and its PostgreSQL backend's (read from /proc), the figure a busy
shared machine disturbs least (the broker's CPU is not counted).

Prints, asserts nothing. The machine's load average is printed with the
figures, before the database is dropped and the topics deleted; a cleanup
that fails (an autovacuum that will not leave) is a warning, not an error.
`--profile TOP` prints the TOP functions of the projector's cProfile by own
time (the timing then includes the profiler's overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support

from cli.topics import create_topics
from config import KafkaNames, Settings
from domain import Event, MigrationSpec
from projections.collector import pace_for_many_objects
from projections.projector import Batch, Projector
from schemas import encode
from scripts.bench.cpu_time import Meter
from scripts.bench.tidy import tidy
from streams.kafka import clients
from tests.support.read_side import lifecycle

TABLES = ("migration_events", "migrations", "migration_phases", "projection_offsets")


def histories(events: int) -> list[Event]:
    spec = MigrationSpec(
        source_connection="legacy",
        source_table="customers",
        source_key="id",
        target_connection="warehouse",
        target_table="customers",
    )
    per = len(lifecycle("m-0", spec))
    every = [lifecycle(f"m-{i:06d}", spec) for i in range(max(1, events // per))]
    return [h[i] for i in range(per) for h in every]


def produce(settings: Settings, names: KafkaNames, events: list[Event]) -> None:
    producer = clients.producer(settings, **{"linger.ms": 50})
    for i, event in enumerate(events):
        value, headers = encode(event)
        producer.produce(names.events, value, event.migration_id.encode(), headers=headers)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)


class TimedProjector(Projector):
    """The projector, noting when its first batch began and its last one
    committed, and the CPU it and its database backend used in between."""

    first: float | None = None
    last: float = 0.0
    applied = 0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.cpu = Meter()

    async def project(self, conn: Any, batch: Batch) -> None:
        if self.first is None:
            self.cpu.backend_pid = conn.info.backend_pid
            self.cpu.start()
            self.first = time.perf_counter()
        await super().project(conn, batch)
        self.last = time.perf_counter()
        self.cpu.read()
        self.applied += sum(len(r) for r in batch.values())


async def project(settings: Settings, expected: int, top: int = 0) -> TimedProjector:
    """Run the projector until it has applied `expected` records; with
    `top`, print the `top` functions of its cProfile (start-up included) by own time."""
    projector = TimedProjector(settings)
    profile = cProfile.Profile()
    if top:
        profile.enable()
    task = asyncio.create_task(projector.run())
    while projector.applied < expected:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    projector.stop()
    await task
    if top:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(top)
    return projector


@dataclass
class Peer:
    """The raw COPY's runs: seconds and CPU meters, and the rows it copied."""

    seconds: list[float]
    cpu: list[Meter]
    counts: dict[str, int]

    @property
    def median(self) -> int:
        """The index of the median run by time."""
        return sorted(range(len(self.seconds)), key=self.seconds.__getitem__)[
            len(self.seconds) // 2
        ]


def raw_copy(dsn: str, runs: int) -> Peer:
    """COPY the projected rows into empty tables of the same shape, `runs` times."""
    counts: dict[str, int] = {}
    peer = Peer([], [], counts)
    with psycopg.connect(dsn) as conn:
        for table in TABLES:
            conn.execute(f"CREATE TABLE copy_{table} (LIKE {table} INCLUDING ALL)".encode())
        conn.commit()
        dumps = {t: _dump(conn, t) for t in TABLES}
        for _ in range(runs):
            copies = ", ".join(f"copy_{t}" for t in TABLES)
            conn.execute(f"TRUNCATE {copies}".encode())
            conn.commit()
            meter = Meter(backend_pid=conn.info.backend_pid)
            meter.start()
            began = time.perf_counter()
            with conn.transaction():
                for table, data in dumps.items():
                    with conn.cursor().copy(f"COPY copy_{table} FROM STDIN".encode()) as copy:
                        copy.write(data)
            peer.seconds.append(time.perf_counter() - began)
            meter.read()
            peer.cpu.append(meter)
        for table in TABLES:
            row = conn.execute(f"SELECT count(*) FROM copy_{table}".encode()).fetchone()
            counts[table] = int(row[0]) if row else 0
    return peer


def _dump(conn: psycopg.Connection[Any], table: str) -> bytes:
    out = bytearray()
    with conn.cursor().copy(f"COPY {table} TO STDOUT".encode()) as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000, help="PROJECTOR_BATCH_MAX")
    parser.add_argument("--peer-runs", type=int, default=3, help="runs of the raw COPY")
    parser.add_argument("--bootstrap", default="127.0.0.1:39092")
    parser.add_argument("--database", default="postgresql://migrator@127.0.0.1:35432/migrations")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="TOP", help="print the projector's cProfile"
    )
    args = parser.parse_args()

    pace_for_many_objects()  # as `python -m projections` and the rebuild command do
    run = uuid.uuid4().hex[:6]
    name = f"bench_projection_{run}"
    with psycopg.connect(args.database, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    settings = Settings(
        kafka={
            "bootstrap_servers": args.bootstrap,
            "topic_prefix": f"bench-{run}.",
            "app_id": f"bench-{run}",
            "topic_partitions": 6,
        },
        database={"url": make_conninfo(args.database, dbname=name)},
        projector={"batch_max": args.batch},
    )
    try:
        measure(settings, args, run)
    finally:
        # After the figures: dropping the database may have to wait (an
        # autovacuum worker in it), and must never lose them.
        for warning in tidy(args.database, name, settings):
            print(f"warning: {warning}", file=sys.stderr)


def measure(settings: Settings, args: argparse.Namespace, run: str) -> None:
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    create_topics(settings)
    events = histories(args.events)
    produce(settings, names, events)
    projector = asyncio.run(project(settings, len(events), args.profile))
    assert projector.first is not None
    peer = raw_copy(settings.database.url.get_secret_value(), args.peer_runs)
    report(run, args.batch, events, projector, peer)


def report(
    run: str, batch: int, events: list[Event], projector: TimedProjector, peer: Peer
) -> None:
    n, migrations = len(events), len({e.migration_id for e in events})
    projected = projector.last - (projector.first or projector.last)
    middle = peer.median
    copy_seconds, copy_cpu = peer.seconds[middle], peer.cpu[middle]
    load = os.getloadavg()[0]
    cache = projector.rows
    print(f"run {run}: {n:,} events of {migrations:,} migrations, batch {batch}, load {load:.2f}")
    print(f"  rows written: {peer.counts}")
    print(f"  projector  {n / projected:>10,.0f} events/s  ({projected:.2f} s)")
    runs = ", ".join(f"{s:.2f}" for s in peer.seconds)
    print(f"  raw COPY   {n / copy_seconds:>10,.0f} events/s  (median of {runs} s, same rows)")
    print(f"  ratio projector/COPY: {copy_seconds / projected:.3f}")
    print(f"  CPU projector: {projector.cpu.per_event(n)}")
    print(f"  CPU raw COPY:  {copy_cpu.per_event(n)}")
    if projector.cpu.total and copy_cpu.total:
        print(f"  ratio by CPU per event: {copy_cpu.total / projector.cpu.total:.3f}")
    print(f"  row cache: {cache.hits:,} hits, {cache.misses:,} misses", flush=True)


if __name__ == "__main__":
    main()

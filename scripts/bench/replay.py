"""Benchmark: rebuilding the read model by replay (`migrator projection
rebuild`) in events/s, against a raw read_committed consume of the same topic,
in one run on one broker and one database.

    .local/venv/bin/python scripts/bench/replay.py                 # the local stack
    .local/venv/bin/python scripts/bench/replay.py --events 100000

1. N events (whole migration histories, interleaved) are produced to a fresh
   topic in transactions of 500, as the orchestrator writes them (so the log
   holds commit markers too).
2. Peer: an aiokafka consumer (the client the rebuild uses), read_committed,
   no group, reads every partition from the beginning to its committed end
   without decoding; and the same with confluent-kafka.
3. The rebuild (the class the command runs) into a fresh, empty database:
   schema, replay into the shadow, swap; events/s over its whole run.

Prints, asserts nothing. The machine's load average is printed with the
figures, and the rebuild's CPU per event (this process's and its PostgreSQL
backend's, the figure a busy shared machine disturbs least), before the
database is dropped and the topics deleted; a cleanup that fails is a
warning. 10M events: `--events 10000000` (producing them takes a while).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as CTopicPartition
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support

from cli.topics import create_topics
from config import KafkaNames, Settings
from domain import Event, MigrationSpec
from projections.batch import Batch
from projections.collector import pace_for_many_objects
from projections.fold import Folded
from projections.rebuild import Outcome, Rebuild
from projections.row_cache import RowCache
from schemas import encode
from scripts.bench.cpu_time import Meter
from scripts.bench.tidy import tidy
from streams.kafka import clients
from streams.kafka.produce import produce as enqueue
from streams.kafka.transaction import Transactions
from tests.support.read_side import lifecycle

CHUNK = 60_000  # migrations interleaved together (1M events: all of them)


def histories(events: int) -> Iterator[list[Event]]:
    """Whole migration histories, interleaved `CHUNK` migrations at a time
    (so that 10M events need not be held at once)."""
    spec = MigrationSpec(
        source_connection="legacy",
        source_table="customers",
        source_key="id",
        target_connection="warehouse",
        target_table="customers",
    )
    per = len(lifecycle("m-0", spec))
    count = max(1, events // per)
    for first in range(0, count, CHUNK):
        every = [lifecycle(f"m-{i:07d}", spec) for i in range(first, min(count, first + CHUNK))]
        yield [h[i] for i in range(per) for h in every]


def produce(settings: Settings, topic: str, chunks: Iterable[list[Event]]) -> int:
    """Produce the events in transactions of 500; return how many."""
    producer = clients.transactional_producer(settings, uuid.uuid4().hex, **{"linger.ms": 20})
    transactions = Transactions(producer, 60)
    transactions.init()
    produced = 0
    for events in chunks:
        for at in range(0, len(events), 500):
            with transactions.open():
                for event in events[at : at + 500]:
                    enqueue(producer, topic, event.migration_id.encode(), *encode(event))
                transactions.commit()
        produced += len(events)
    return produced


async def raw_aiokafka(settings: Settings, topic: str, partitions: int) -> tuple[float, int]:
    """Seconds and records to read the whole topic (read_committed), not decoded."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        began, count = time.perf_counter(), 0
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            count += sum(len(records) for records in batch.values())
        return time.perf_counter() - began, count
    finally:
        await consumer.stop()


def raw_confluent(settings: Settings, topic: str, partitions: int, expected: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([CTopicPartition(topic, p, 0) for p in range(partitions)])
    began, count = time.perf_counter(), 0
    while count < expected:
        count += sum(1 for m in consumer.consume(1000, 1.0) if m.error() is None)
    seconds = time.perf_counter() - began
    consumer.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000, help="PROJECTOR_BATCH_MAX")
    parser.add_argument("--bootstrap", default="127.0.0.1:39092")
    parser.add_argument("--database", default="postgresql://migrator@127.0.0.1:35432/migrations")
    args = parser.parse_args()

    pace_for_many_objects()  # as `python -m projections` and the rebuild command do
    run = uuid.uuid4().hex[:6]
    name = f"bench_replay_{run}"
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
        measure(settings, args.events, run)
    finally:
        # After the figures: dropping the database may have to wait.
        for warning in tidy(args.database, name, settings):
            print(f"warning: {warning}", file=sys.stderr)


def measure(settings: Settings, n: int, run: str) -> None:
    topic = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix).events
    create_topics(settings)
    produce(settings, topic, histories(n))
    raw_seconds, raw_count = asyncio.run(raw_aiokafka(settings, topic, 6))
    confluent_seconds = raw_confluent(settings, topic, 6, raw_count)
    rebuild = MeteredRebuild(settings, run)
    outcome = asyncio.run(rebuild.run())
    report(run, raw_count, outcome, (raw_seconds, raw_count), confluent_seconds, rebuild)


class MeteredRebuild(Rebuild):
    """The rebuild, with the CPU it and its database backend use while replaying."""

    def __init__(self, settings: Settings, rebuild_id: str) -> None:
        super().__init__(settings, rebuild_id)
        self.cpu = Meter()
        self.peak = 0

    async def _apply(self, conn: Any, batch: Batch, rows: RowCache | None = None) -> Folded:
        if self.cpu.backend_pid is None:
            self.cpu.backend_pid = conn.info.backend_pid
            self.cpu.start()
        folded = await super()._apply(conn, batch, rows)
        self.cpu.read()
        return folded


def report(
    run: str,
    n: int,
    outcome: Outcome,
    raw: tuple[float, int],
    confluent_seconds: float,
    rebuild: MeteredRebuild,
) -> None:
    (raw_seconds, raw_count), load = raw, os.getloadavg()[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"run {run}: {n:,} events of {outcome.migrations:,} migrations, load {load:.2f}")
    print(f"  rebuild            {n / outcome.seconds:>10,.0f} events/s  ({outcome.seconds:.2f} s)")
    print(f"  raw aiokafka       {raw_count / raw_seconds:>10,.0f} events/s  ({raw_seconds:.2f} s)")
    confluent = f"{n / confluent_seconds:>10,.0f} events/s  ({confluent_seconds:.2f} s)"
    print(f"  raw confluent      {confluent}")
    print(f"  ratio rebuild/aiokafka:   {raw_seconds / outcome.seconds:.3f}")
    print(f"  ratio rebuild/confluent:  {confluent_seconds / outcome.seconds:.3f}")
    print(f"  CPU rebuild (replay): {rebuild.cpu.per_event(n)}")
    print(f"  10M events at this rate: {1e7 / (n / outcome.seconds) / 60:.1f} min")
    cache = rebuild.rows
    print(f"  row cache: {cache.hits:,} hits, {cache.misses:,} misses, {len(cache):,} kept")
    print(f"  peak memory of this process: {rss:,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()

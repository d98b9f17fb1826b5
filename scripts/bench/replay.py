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

Prints, asserts nothing. The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as CTopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support

from cli.topics import create_topics
from config import KafkaNames, Settings
from domain import Event, MigrationSpec
from projections.rebuild import Outcome, Rebuild
from schemas import encode
from streams.kafka import clients
from streams.kafka.produce import produce as enqueue
from streams.kafka.transaction import Transactions
from tests.support.read_side import lifecycle
from tests.support.tables import fresh_database


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


def produce(settings: Settings, topic: str, events: list[Event]) -> None:
    producer = clients.transactional_producer(settings, uuid.uuid4().hex, **{"linger.ms": 20})
    transactions = Transactions(producer, 60)
    transactions.init()
    for at in range(0, len(events), 500):
        with transactions.open():
            for event in events[at : at + 500]:
                enqueue(producer, topic, event.migration_id.encode(), *encode(event))
            transactions.commit()


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

    run = uuid.uuid4().hex[:6]
    name = f"bench_replay_{run}"
    with fresh_database(args.database, name) as dsn:
        settings = Settings(
            kafka={
                "bootstrap_servers": args.bootstrap,
                "topic_prefix": f"bench-{run}.",
                "app_id": f"bench-{run}",
                "topic_partitions": 6,
            },
            database={"url": dsn},
            projector={"batch_max": args.batch},
        )
        topic = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix).events
        create_topics(settings)
        events = histories(args.events)
        produce(settings, topic, events)
        raw_seconds, raw_count = asyncio.run(raw_aiokafka(settings, topic, 6))
        confluent_seconds = raw_confluent(settings, topic, 6, len(events))
        outcome = asyncio.run(Rebuild(settings, run).run())
        # Printed before the database is dropped, which may have to wait.
        report(run, len(events), outcome, (raw_seconds, raw_count), confluent_seconds)


def report(
    run: str, n: int, outcome: Outcome, raw: tuple[float, int], confluent_seconds: float
) -> None:
    (raw_seconds, raw_count), load = raw, os.getloadavg()[0]
    print(f"run {run}: {n:,} events of {outcome.migrations:,} migrations, load {load:.2f}")
    print(f"  rebuild            {n / outcome.seconds:>10,.0f} events/s  ({outcome.seconds:.2f} s)")
    print(f"  raw aiokafka       {raw_count / raw_seconds:>10,.0f} events/s  ({raw_seconds:.2f} s)")
    confluent = f"{n / confluent_seconds:>10,.0f} events/s  ({confluent_seconds:.2f} s)"
    print(f"  raw confluent      {confluent}")
    print(f"  ratio rebuild/aiokafka:   {raw_seconds / outcome.seconds:.3f}")
    print(f"  ratio rebuild/confluent:  {confluent_seconds / outcome.seconds:.3f}", flush=True)


if __name__ == "__main__":
    main()

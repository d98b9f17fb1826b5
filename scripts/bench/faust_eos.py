"""Benchmark: duplicates left under read_committed by kill -9, Faust against ours.

    .local/venv/bin/pip install -e '.[faust]'       # faust-streaming, for this only
    .local/venv/bin/python scripts/bench/faust_eos.py [--records 50000] [--kills 10]
        [--workers 2] [--partitions 6] [--only faust-eos,faust-alos,ours,ours-alos]

On the broker of KAFKA_BOOTSTRAP_SERVERS, one variant after the other, each
with topics and a consumer group of its own:

- faust-eos: `--workers` processes of a faust-streaming pass-through agent
  (faust_agent.py: every record of an input topic sent on to an output topic)
  with `processing_guarantee="exactly_once"`;
- faust-alos: the same agent with `at_least_once`;
- ours: `--workers` orchestrator workers (`python -m streams worker`,
  exactly_once, as in production) deciding one StartMigration per record;
- ours-alos: the same workers with WORKER_PROCESSING_GUARANTEE=at_least_once,
  the calibration: the count finds the duplicates when there are some.

Each variant's `--records` inputs are on its input topic before its workers
start. Once the first output is visible, the kill schedule of the chaos test
(tests/chaos/test_kill_workers.py) runs: `--kills` times, 1-3 s apart
(random.Random(7)), one worker chosen at random is SIGKILLed and started
again at once. Then the variant runs until every input has its output (or
`--quiet` s pass with no new output), its workers get SIGTERM, and a fresh
read_committed consumer reads the output topic to its end:

- Faust: duplicates = records read - distinct values (each input's value is
  unique), missing = inputs - distinct values;
- ours: the events on `migration.events`; duplicates = events read - distinct
  (migration id, sequence), missing = StartMigration commands with no
  MigrationStarted.

Prints, per variant, the records read, duplicates, missing, seconds and
restarts; asserts nothing. Topics and groups are deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from confluent_kafka.cimpl import NewTopic  # noqa: E402

from cli.topics import create_topics  # noqa: E402
from config import KafkaNames, Settings, load_settings  # noqa: E402
from domain import MigrationSpec, StartMigration  # noqa: E402
from schemas import decode_event, encode  # noqa: E402
from streams.kafka.clients import producer_config  # noqa: E402
from streams.kafka.consumed import Consumed  # noqa: E402
from streams.kafka.reader import read_committed  # noqa: E402
from tests.support.processes import process_env  # noqa: E402

VARIANTS = ("faust-eos", "faust-alos", "ours", "ours-alos")
SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)


@dataclass
class Result:
    variant: str
    inputs: int
    read: int
    distinct: int
    missing: int
    seconds: float
    kills: int
    note: str = ""

    @property
    def duplicates(self) -> int:
        return self.read - self.distinct


class Workers:
    """The variant's worker processes, each restartable under its name."""

    def __init__(self, command: list[str], env: Callable[[str], dict[str, str]], logs: Path):
        self.command, self.env, self.logs = command, env, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.crashes = 0

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        proc = self.running[name]
        proc.kill()
        proc.wait(10)
        self.start(name)

    def restart_crashed(self) -> None:
        """A worker that exited on its own is started again (as a supervisor would)."""
        for name, proc in list(self.running.items()):
            if proc.poll() is not None:
                self.crashes += 1
                self.start(name)

    def stop_all(self, grace: float = 30.0) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.running.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class Outputs:
    """A read_committed consumer following the output topic while the
    variant runs: how many inputs have an output so far."""

    def __init__(self, bootstrap: str, topic: str, key_of: Callable[[Consumed], object]):
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": f"faust-eos-follow-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
        self.consumer = Consumer(config)
        parts = self.consumer.list_topics(topic, timeout=30).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.key_of, self.seen, self.last_new = key_of, set[object](), time.monotonic()

    def poll(self) -> int:
        for message in self.consumer.consume(2000, 0.2):
            if message.error() is None:
                key = self.key_of(Consumed.of(message))
                if key is not None and key not in self.seen:
                    self.seen.add(key)
                    self.last_new = time.monotonic()
        return len(self.seen)

    def close(self) -> None:
        self.consumer.close()


def run_variant(
    args: argparse.Namespace,
    variant: str,
    workers: Workers,
    outputs: Outputs,
    count: Callable[[], tuple[int, int, int]],
) -> Result:
    """Start the workers, kill on schedule, run to the end, count."""
    names = [f"w{i}" for i in range(args.workers)]
    started = time.monotonic()
    for name in names:
        workers.start(name)
    deadline = started + args.timeout
    while outputs.poll() == 0 and time.monotonic() < deadline:
        workers.restart_crashed()
    rng = random.Random(7)
    kills, next_kill = 0, time.monotonic() + rng.uniform(1, 3)
    note = ""
    while time.monotonic() < deadline:
        workers.restart_crashed()
        done = outputs.poll()
        if kills >= args.kills and done >= args.records:
            break
        if kills >= args.kills and time.monotonic() - outputs.last_new > args.quiet:
            note = f"no new output for {args.quiet:g} s"
            break
        if kills < args.kills and time.monotonic() >= next_kill:
            workers.kill(rng.choice(names))
            kills += 1
            next_kill = time.monotonic() + rng.uniform(1, 3)
    else:
        note = f"timed out after {args.timeout:g} s"
    if workers.crashes:
        note = f"{workers.crashes} exits restarted; {note}"
    seconds = time.monotonic() - started
    outputs.close()
    workers.stop_all()
    read, distinct, missing = count()
    result = Result(variant, args.records, read, distinct, missing, seconds, kills, note)
    print(
        f"  {variant:<11} read {read:>7,}  duplicates {result.duplicates:>7,}"
        f"  missing {missing:>6,}  {seconds:6.0f} s  {kills} kills {note}"
    )
    sys.stdout.flush()
    return result


# -- faust --------------------------------------------------------------------------


def faust_variant(args: argparse.Namespace, settings: Settings, run: str, variant: str) -> Result:
    guarantee = "exactly_once" if variant == "faust-eos" else "at_least_once"
    app_id = f"faust-eos-{run}-{variant}"
    source, sink = f"{app_id}-in", f"{app_id}-out"
    bootstrap = settings.kafka.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(t, args.partitions, 1) for t in (source, sink)]
    for future in admin.create_topics(topics, operation_timeout=30).values():
        future.result()
    producer = Producer(producer_config(settings))
    for i in range(args.records):
        producer.produce(source, str(i).encode(), str(i).encode())
        producer.poll(0)
    producer.flush(120)
    logs = Path(tempfile.mkdtemp(prefix=f"{app_id}-"))
    env = {
        **os.environ,
        "FAUST_APP_ID": app_id,
        "FAUST_BROKER": bootstrap,
        "FAUST_GUARANTEE": guarantee,
        "FAUST_SOURCE": source,
        "FAUST_SINK": sink,
        "FAUST_PARTITIONS": str(args.partitions),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, str(ROOT / "scripts/bench/faust_agent.py"), "worker"]
    workers = Workers(
        [*command, "--without-web", "-l", "warn"],
        lambda name: {**env, "FAUST_DATADIR": str(logs / f"{name}-data")},
        logs,
    )

    def count() -> tuple[int, int, int]:
        values = [r.value for r in read_committed(settings, sink, timeout=300)]
        distinct = set(values)
        return len(values), len(distinct), args.records - len(distinct)

    outputs = Outputs(bootstrap, sink, lambda r: r.value)
    try:
        return run_variant(args, variant, workers, outputs, count)
    finally:
        workers.stop_all()
        done_with(logs, args.keep)
        delete(admin, lambda t: t.startswith(app_id), [app_id])


# -- ours ---------------------------------------------------------------------------


def ours_variant(args: argparse.Namespace, base: Settings, run: str, variant: str) -> Result:
    guarantee = "exactly_once" if variant == "ours" else "at_least_once"
    settings = base.replace(
        kafka={
            "topic_prefix": f"fausteos{run}{variant.replace('-', '')}.",
            "app_id": f"faust-eos-{run}-{variant}",
            "topic_partitions": args.partitions,
        },
        worker={"processing_guarantee": guarantee},
    )
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    create_topics(settings)
    producer = Producer(producer_config(settings))
    for i in range(args.records):
        mid = f"m-{i:07d}"
        value, headers = encode(StartMigration(command_id=f"c-{i}", migration_id=mid, spec=SPEC))
        producer.produce(names.commands, value, mid.encode(), headers=headers)
        producer.poll(0)
    producer.flush(120)
    logs = Path(tempfile.mkdtemp(prefix=f"faust-eos-{run}-{variant}-"))
    env = process_env(settings)
    workers = Workers(
        [sys.executable, "-m", "streams", "worker"],
        lambda name: {**env, "WORKER_ID": name},
        logs,
    )

    def started(record: Consumed) -> object:
        event = decode_event(record.value, record.headers)
        return event.migration_id if event.type == "MigrationStarted" else None

    def count() -> tuple[int, int, int]:
        read, distinct, begun = 0, set[tuple[str, int]](), set[str]()
        for record in read_committed(settings, names.events, timeout=300):
            event = decode_event(record.value, record.headers)
            read += 1
            distinct.add((event.migration_id, event.sequence))
            if event.type == "MigrationStarted":
                begun.add(event.migration_id)
        return read, len(distinct), args.records - len(begun)

    outputs = Outputs(settings.kafka.bootstrap_servers, names.events, started)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    try:
        return run_variant(args, variant, workers, outputs, count)
    finally:
        workers.stop_all()
        done_with(logs, args.keep)
        prefix = settings.kafka.topic_prefix
        delete(
            admin,
            lambda t: t.startswith(prefix) or t.startswith(settings.kafka.app_id),
            [settings.kafka.app_id, f"{settings.kafka.app_id}-reader"],
        )


def done_with(logs: Path, keep: bool) -> None:
    """The workers' logs (and Faust's data folders): kept with --keep."""
    if keep:
        print(f"    logs: {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)


def delete(admin: AdminClient, ours: Callable[[str], bool], groups: list[str]) -> None:
    """The variant's topics and consumer groups; a failure is a warning."""
    try:
        topics = [t for t in admin.list_topics(timeout=30).topics if ours(t)]
        if topics:
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                future.result()
        for future in admin.delete_consumer_groups(groups, request_timeout=30).values():
            with contextlib.suppress(Exception):  # a group that never formed
                future.result()
    except Exception as exc:
        print(f"    warning: cleanup: {exc}")


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--only", default=",".join(VARIANTS), help="a subset of " + ",".join(VARIANTS)
    )
    parser.add_argument(
        "--quiet", type=float, default=150.0, help="s with no new output after the kills: stop"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="s per variant at most")
    parser.add_argument("--keep", action="store_true", help="keep the workers' logs")
    return parser.parse_args()


def main() -> int:
    args = options()
    settings = load_settings()
    run = uuid.uuid4().hex[:6]
    wanted = [v for v in args.only.split(",") if v]
    unknown = set(wanted) - set(VARIANTS)
    if unknown:
        sys.exit(f"unknown variants: {sorted(unknown)}")
    print(
        f"faust_eos {run}: {args.records:,} records, {args.workers} workers, {args.kills} kill -9"
        f" 1-3 s apart, {args.partitions} partitions, broker {settings.kafka.bootstrap_servers},"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    results: list[Result] = []
    for variant in wanted:
        run_one = faust_variant if variant.startswith("faust") else ours_variant
        try:
            results.append(run_one(args, settings, run, variant))
        except Exception as exc:  # the other variants still run
            print(f"  {variant:<11} ERROR {type(exc).__name__}: {str(exc)[:500]}")
    print(f"\n{'variant':<12}{'inputs':>8}{'read':>9}{'duplicates':>12}{'missing':>9}{'kills':>7}")
    for r in results:
        print(
            f"{r.variant:<12}{r.inputs:>8,}{r.read:>9,}{r.duplicates:>12,}{r.missing:>9,}{r.kills:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the orchestrator's memory and restart time against the number of
migrations ever run, with finished migrations retired and with them kept; and
one worker holding many active migrations.

    .local/venv/bin/python scripts/bench/state.py --bootstrap 127.0.0.1:39092
    .local/venv/bin/python scripts/bench/state.py --history 20000,40000,80000 --active 10000

Each mode runs one worker process (`python -m streams worker`, exactly-once)
on topics of its own:

  retire  WORKER_STATE_RETENTION_SECONDS=1: a finished migration's state is
          retired a second after it finished (tombstone + 12-byte retired id)
  keep    WORKER_STATE_RETENTION_SECONDS at its default (7 days): nothing is
          retired during the run, every finished state stays (the limit: what
          the worker did before retirement existed)

Per point of --history, the migrations run since the last point are each
started and cancelled (StartMigration + CancelMigration: 3 events), the run
waits for every event, and in `retire` mode for their retirement (the worker's
migrator_migrations_retired_total); then it reports the worker's resident
memory (VmRSS, after the run) and restarts it: restart-to-first-event is the
time from the new process's start to the first event of a StartMigration
produced at that moment (imports, group join, changelog load, one decision).

Then --active migrations are started and left running (no phase workers:
they stay RUNNING) in the `retire` mode's worker, on top of its history:
memory and restart time with them held.

Prints, asserts nothing. The machine's other load shows in the times: the
header prints the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config import KafkaNames, Settings
from domain import CancelMigration, MigrationSpec, StartMigration
from schemas import encode
from streams.kafka import clients
from streams.kafka.produce import produce

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orchestrator import (
    ROOT,
    Watcher,
    _free_port,
    delete_run,
    ensure_topics,
    stop_process,
)

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="dim_customer",
    mapping={"id": "cid", "name": "full_name"},
)
EVENTS_PER_FINISHED = 3  # MigrationStarted, PhaseRequested, MigrationCancelled
EVENTS_PER_ACTIVE = 2


@dataclass
class Point:
    mode: str
    ever: int  # migrations ever run (finished)
    active: int
    rss_mib: float  # the worker that ran them, at the end
    restart_s: float
    retired: int
    restarted_rss_mib: float = float("nan")  # the restarted worker, after its first event


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Worker:
    """One orchestrator worker process on the mode's topics."""

    def __init__(self, settings: Settings, retention: float | None, log: Path) -> None:
        self.settings, self.retention, self.log = settings, retention, log
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.retired_before = 0  # by the worker's earlier processes

    def start(self) -> subprocess.Popen[bytes]:
        s = self.settings
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": s.kafka.topic_prefix,
            "KAFKA_APP_ID": s.kafka.app_id,
            "KAFKA_TOPIC_PARTITIONS": str(s.kafka.topic_partitions),
            "WORKER_ID": s.worker.id,
            "WORKER_METRICS_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        if self.retention is not None:
            env["WORKER_STATE_RETENTION_SECONDS"] = str(self.retention)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.retired_before = self.retired()
            stop_process(self.proc)
            self.proc = None

    def retired(self) -> int:
        """Migrations retired by this worker's processes so far."""
        return self.retired_before + int(scrape_retired(self.port))


def scrape_retired(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("migrator_migrations_retired_total "):
            return float(line.split()[1])
    return 0.0


def scrape_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5):
            return True
    except OSError:
        return False


def produce_commands(
    settings: Settings, topic: str, tag: str, first: int, n: int, cancel: bool
) -> None:
    producer = clients.producer(settings)
    for i in range(first, first + n):
        mid = f"{tag}-m{i:07d}"
        value, headers = encode(StartMigration(command_id=f"{mid}-s", migration_id=mid, spec=SPEC))
        produce(producer, topic, mid.encode(), value, headers)
        if cancel:
            value, headers = encode(CancelMigration(command_id=f"{mid}-c", migration_id=mid))
            produce(producer, topic, mid.encode(), value, headers)
    if producer.flush(120):
        raise RuntimeError("commands not delivered")


def wait(
    what: str, done: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"worker exited ({proc.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout:.0f}s")
        time.sleep(0.05)


def restart_to_first_event(
    worker: Worker, watcher: Watcher, settings: Settings, topic: str, tag: str, timeout: float
) -> float:
    """Stop the worker, start it again and time its first decision."""
    worker.stop()
    before = watcher.count
    started = time.monotonic()
    proc = worker.start()
    produce_commands(settings, topic, f"{tag}-probe-{uuid.uuid4().hex[:6]}", 0, 1, cancel=False)
    wait("the probe's first event", lambda: watcher.count > before, timeout, proc)
    seconds = time.monotonic() - started
    wait("the probe's events", lambda: watcher.count >= before + EVENTS_PER_ACTIVE, timeout, proc)
    return seconds


def run_mode(
    args: argparse.Namespace, run_id: str, mode: str, logs: Path, active: int
) -> list[Point]:
    settings = Settings(
        kafka={
            "bootstrap_servers": args.bootstrap,
            "topic_prefix": f"bench-{run_id}-{mode}.",
            "app_id": f"bench-{run_id}-{mode}",
            "topic_partitions": args.partitions,
        },
        worker={"id": f"bench-{mode}"},
    )
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    ensure_topics(settings)
    retention = 1.0 if mode == "retire" else None
    worker = Worker(settings, retention, logs / f"{mode}.log")
    watcher = Watcher(settings, names.events)
    watcher.start()
    points: list[Point] = []
    expected, ever, probes = 0, 0, 0
    try:
        proc = worker.start()
        wait("the worker's /metrics", lambda: scrape_up(worker.port), args.timeout, proc)
        for target in [0, *args.history]:
            n = target - ever
            if n > 0:
                produce_commands(settings, names.commands, mode, ever, n, cancel=True)
                expected += EVENTS_PER_FINISHED * n
                ever = target
                wait("every event", lambda e=expected: watcher.count >= e, args.timeout, proc)
                if mode == "retire":
                    wait(
                        "every retirement", lambda n=ever: worker.retired() >= n, args.timeout, proc
                    )
            time.sleep(1.0)
            assert worker.proc is not None
            rss = rss_mib(worker.proc.pid)
            retired = worker.retired()
            seconds = restart_to_first_event(
                worker, watcher, settings, names.commands, mode, args.timeout
            )
            probes += 1
            expected += EVENTS_PER_ACTIVE
            assert worker.proc is not None
            proc = worker.proc
            time.sleep(1.0)
            again = rss_mib(proc.pid)
            points.append(Point(mode, ever, probes - 1, rss, seconds, retired, again))
            print(
                f"  {mode:6} ever {ever:>7,} active {probes - 1:>6,}: rss {rss:7.1f} MiB,"
                f" restart-to-first-event {seconds:5.2f} s, rss after restart {again:7.1f} MiB,"
                f" retired {retired:,}",
                flush=True,
            )
        if active:
            produce_commands(settings, names.commands, f"{mode}-active", 0, active, cancel=False)
            expected += EVENTS_PER_ACTIVE * active
            wait(
                "the active migrations' events",
                lambda: watcher.count >= expected,
                args.timeout,
                proc,
            )
            time.sleep(1.0)
            assert worker.proc is not None
            rss = rss_mib(worker.proc.pid)
            seconds = restart_to_first_event(
                worker, watcher, settings, names.commands, mode, args.timeout
            )
            probes += 1
            time.sleep(1.0)
            assert worker.proc is not None
            again = rss_mib(worker.proc.pid)
            point = Point(mode, ever, active + probes - 1, rss, seconds, worker.retired(), again)
            points.append(point)
            print(
                f"  {mode:6} ever {ever:>7,} active {active + probes - 1:>6,}: rss {rss:7.1f} MiB,"
                f" restart-to-first-event {seconds:5.2f} s, rss after restart {again:7.1f} MiB",
                flush=True,
            )
    finally:
        worker.stop()
        watcher.halt.set()
        watcher.join(5)
    return points


def print_table(points: list[Point]) -> None:
    print()
    print(
        f"{'mode':7} {'ever run':>9} {'active':>7} {'rss MiB':>8} {'restart s':>9}"
        f" {'restarted rss MiB':>17} {'retired':>8}"
    )
    for p in points:
        print(
            f"{p.mode:7} {p.ever:9,} {p.active:7,} {p.rss_mib:8.1f} {p.restart_s:9.2f}"
            f" {p.restarted_rss_mib:17.1f} {p.retired:8,}"
        )
    keep = {(p.ever, p.active): p for p in points if p.mode == "keep"}
    pairs = [
        (p, keep[(p.ever, p.active)])
        for p in points
        if p.mode == "retire" and (p.ever, p.active) in keep
    ]
    if pairs:
        print()
        print("retire/keep at the same history:")
        for r, k in pairs:
            print(
                f"  ever {r.ever:9,}: memory {r.rss_mib / k.rss_mib:5.2f}, restart"
                f" {r.restart_s / k.restart_s:5.2f}, memory after restart"
                f" {r.restarted_rss_mib / k.restarted_rss_mib:5.2f}"
            )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:39092")
    )
    parser.add_argument(
        "--history",
        default="10000,30000",
        help="comma-separated counts of migrations ever run (finished) to measure at",
    )
    parser.add_argument("--active", type=int, default=10_000, help="active migrations at the end")
    parser.add_argument("--modes", default="retire,keep")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--keep-topics", action="store_true", help="keep topics, groups and worker logs"
    )
    args = parser.parse_args(argv)
    args.history = sorted(int(x) for x in args.history.split(",") if x.strip())
    run_id = uuid.uuid4().hex[:6]
    logs = Path(tempfile.mkdtemp(prefix=f"bench-state-{run_id}-"))
    load = os.getloadavg()
    print(
        f"state benchmark {run_id}: broker {args.bootstrap}, {args.partitions} partitions,"
        f" history {args.history}, active {args.active:,}; load average"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; worker logs in {logs}",
        flush=True,
    )
    points: list[Point] = []
    failed = False
    t0 = time.monotonic()
    try:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            try:
                points += run_mode(args, run_id, mode, logs, args.active if mode == "retire" else 0)
            except Exception as exc:  # report, go on with the next mode
                failed = True
                print(f"  {mode}: FAILED: {exc} (worker logs kept)", flush=True)
        print_table(points)  # before the clean-up
    finally:
        if not args.keep_topics:
            delete_run(args.bootstrap, run_id)
            if not failed:
                shutil.rmtree(logs, ignore_errors=True)
    print(f"\ntotal {time.monotonic() - t0:.0f}s; load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

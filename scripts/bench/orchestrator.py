"""Benchmark: the orchestrator worker with exactly-once and with at-least-once,
against its peer (a plain consume -> produce transactional copy written directly
with confluent-kafka), in one run on one broker; then where the worker's time goes.

    .local/venv/bin/python scripts/bench/orchestrator.py --start-broker
    .local/venv/bin/python scripts/bench/orchestrator.py --bootstrap 127.0.0.1:39092

Each variant gets its own topic prefix and app id (topics made by
cli.topics.create_topics) and runs as its own OS process:

  eos      `python -m streams worker`, WORKER_PROCESSING_GUARANTEE=exactly_once
  alos     `python -m streams worker`, WORKER_PROCESSING_GUARANTEE=at_least_once
  peer     this file's `peer-worker`: read_committed consumer, transactional
           producer; per batch of up to BATCH inputs (the worker's, polled
           the same way: poll(0.2) for the first input, then consume(BATCH - 1, 0)
           for what is already fetched): begin, one output per input (the
           input's key, value and headers), send_offsets_to_transaction with
           consumer_group_metadata(), commit
  peer4    the same copy writing what the EOS worker writes per StartMigration:
           2 records on migration.events, 1 on migration.phase-tasks and 1 on
           the state changelog (same partition): the copy's cost for the same
           records (`--only eos,alos,peer` skips it)

Per variant, two phases against the same running process:

  throughput  N StartMigration commands (Avro, keyed by migration id) are
              produced BEFORE the worker starts; then the worker starts and a
              read_committed consumer counts migration.events until every
              input's outputs are visible (2 events per StartMigration).
              inputs/s = inputs made visible after the first visible batch /
              time from that batch to the last (startup excluded; "wall"
              includes process start, group join and changelog load).
  latency     --rate commands/s for --duration s, each one's produce time
              recorded; latency = when its first output is visible to a
              read_committed consumer (matched by the event's causation_id =
              the command_id, decoded with schemas.decode_event; for the peer,
              by the copied command's command_id).

Before the variants, a warm-up (--warmup inputs through the peer copy, in this
process) so the broker's JIT is warm for the first variant too. Per variant the
table shows the worker process's CPU (% of one core, and µs per input: steadier
than inputs/s when other processes load the machine), the broker's CPU when its
pid is found, and, for the orchestrator, its own /metrics (WORKER_METRICS_PORT):
transactions, inputs per transaction and commit time in each phase.

Then, unless --no-profile: the EOS loop in this process (OrchestratorLoop,
same code) on --profile-n fresh inputs, twice: once with a timer around each
step (consume, decode, decide, encode, produce, commit ...), once under
cProfile (top functions by own time, and own time summed by area).

Prints, asserts nothing. Other load on the machine shows in the figures: the
header prints the load average.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka import version as ck_version
from confluent_kafka.admin import AdminClient

from cli.topics import create_topics
from config import KafkaNames, Settings
from domain import MigrationSpec, StartMigration
from schemas import decode_command, decode_event, encode
from streams.kafka import clients
from streams.kafka.clients import consumer_config, producer_config
from streams.kafka.consumed import Consumed
from streams.kafka.produce import produce
from streams.orchestrator.loop import BATCH  # the peer batches as the worker does

ROOT = Path(__file__).resolve().parents[2]
POLL_TIMEOUT = 0.2  # the worker's wait for a batch's first input
SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="dim_customer",
    mapping={"id": "cid", "name": "full_name"},
)
Encoded = tuple[bytes, bytes, list[tuple[str, bytes]], str]  # key, value, headers, command_id


# --- records ---------------------------------------------------------------------------


def commands(tag: str, n: int) -> list[Encoded]:
    out: list[Encoded] = []
    for i in range(n):
        mid, cid = f"{tag}-m{i:06d}", f"{tag}-c{i:06d}"
        value, headers = encode(StartMigration(command_id=cid, migration_id=mid, spec=SPEC))
        out.append((mid.encode(), value, headers, cid))
    return out


def preload(settings: Settings, topic: str, cmds: list[Encoded]) -> float:
    """Produce every command and wait for them all; returns the seconds it took."""
    producer = clients.producer(settings)
    start = time.perf_counter()
    for key, value, headers, _ in cmds:
        produce(producer, topic, key, value, headers)
    left = producer.flush(60)
    if left:
        raise RuntimeError(f"{left} commands not delivered")
    return time.perf_counter() - start


def _produce(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Any,
    partition: int | None = None,
) -> None:
    while True:
        try:
            if partition is None:
                producer.produce(topic, value, key, headers=headers)
            else:
                producer.produce(topic, value, key, partition=partition, headers=headers)
            return  # no poll(0) per record: the worker's produce does not poll either
        except BufferError:
            producer.poll(0.05)


def ensure_topics(settings: Settings, timeout: float = 30.0) -> None:
    """create_topics, then wait until the broker knows every partition's leader
    (a worker before 1c9a18a, started at once, could fail its first assignment)."""
    create_topics(settings)
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    wanted = {*names.main_topics(), *names.dlq_topics(), names.state_changelog}
    admin = clients.admin(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(timeout=10).topics
        if all(
            t in meta
            and meta[t].error is None
            and len(meta[t].partitions) == settings.kafka.topic_partitions
            and all(pm.leader >= 0 and pm.error is None for pm in meta[t].partitions.values())
            for t in wanted
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics of {settings.kafka.topic_prefix} have no leaders after {timeout}s")


def event_cause(msg: Message) -> str:
    record = Consumed.of(msg)
    return decode_event(record.value, record.headers).causation_id


def copied_command(msg: Message) -> str:
    record = Consumed.of(msg)
    return decode_command(record.value, record.headers).command_id


# --- variants --------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    guarantee: str  # exactly_once | at_least_once
    peer_outputs: int = 0  # 0: the orchestrator; else the peer copy with 1 or 4 outputs

    @property
    def events_per_input(self) -> int:
        """Records each input puts on migration.events (what the watcher counts)."""
        return 1 if self.peer_outputs == 1 else 2

    @property
    def cause(self) -> Callable[[Message], str]:
        return copied_command if self.peer_outputs else event_cause


EOS = Variant("eos", "orchestrator, exactly_once", "exactly_once")
ALOS = Variant("alos", "orchestrator, at_least_once", "at_least_once")
PEER = Variant("peer", "peer: txn copy, 1 out/in", "exactly_once", 1)
PEER4 = Variant("peer4", "peer: txn copy, 4 out/in", "exactly_once", 4)


def settings_for(args: argparse.Namespace, run_id: str, name: str, guarantee: str) -> Settings:
    return Settings(
        kafka={
            "bootstrap_servers": args.bootstrap,
            "topic_prefix": f"bench-{run_id}-{name}.",
            "app_id": f"bench-{run_id}-{name}",
            "topic_partitions": args.partitions,
        },
        worker={"processing_guarantee": guarantee, "id": f"bench-{name}"},
    )


# --- the watcher: a read_committed consumer of migration.events -----------------------


class Watcher(threading.Thread):
    """Counts every record visible on the topic; in latency mode, also matches
    each record to the command that caused it (first match wins)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = clients.consumer(
            settings, f"{settings.kafka.app_id}-watcher", **{"fetch.wait.max.ms": 10}
        )
        self.consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for p in range(settings.kafka.topic_partitions)
            ]
        )
        self.count = 0
        self.first_at: float | None = None
        self.first_count = 0
        self.cause: Callable[[Message], str] | None = None  # latency mode when set
        self.sent: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.undecodable = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            # consume() waits for its whole timeout unless it fills the batch:
            # keep the timeout short so "visible" is timed within ~5 ms.
            msgs = self.consumer.consume(1000, 0.005)
            if not msgs:
                continue
            at = time.monotonic()
            good = [m for m in msgs if m.error() is None]
            self.count += len(good)
            if self.first_at is None and good:
                self.first_at, self.first_count = at, self.count
            cause = self.cause
            if cause is not None:
                for m in good:
                    try:
                        cid = cause(m)
                    except Exception:
                        self.undecodable += 1
                        continue
                    if cid in self.sent and cid not in self.seen:
                        self.seen[cid] = at - self.sent[cid]
        self.consumer.close()


# --- one variant: throughput, then latency, on the same worker process ---------------


@dataclass
class Result:
    variant: Variant
    n: int
    preload_s: float = 0.0
    startup_s: float = 0.0  # worker start -> first visible output
    steady_s: float = 0.0  # first visible output -> all N visible
    steady_inputs: int = 0
    wall_s: float = 0.0  # worker start -> all N visible
    cpu_pct: float = 0.0  # worker process CPU during the steady part (100 = one core)
    broker_cpu_pct: float = float("nan")  # the broker's, same window (when its pid is known)
    latencies: list[float] = field(default_factory=list)
    lat_sent: int = 0
    lat_rate: float = 0.0
    outputs_expected: int = 0
    # from the worker's own /metrics, per phase: (transactions or batches,
    # inputs per batch, mean seconds to send offsets + commit)
    inside: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    outputs_seen: int = 0
    undecodable: int = 0
    error: str = ""

    @property
    def rate(self) -> float:
        return self.steady_inputs / self.steady_s if self.steady_s else 0.0

    @property
    def cpu_us(self) -> float:
        """Worker CPU per input (µs): steadier than inputs/s when others load the machine."""
        return 1e4 * self.cpu_pct / self.rate if self.rate else float("nan")

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, max(0, round(q * len(xs)) - 1))]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (nan when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid(bootstrap: str) -> int | None:
    """The pid listening on the bootstrap port, when it runs on this machine."""
    port = bootstrap.split(",")[0].rsplit(":", 1)[-1]
    try:
        out = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def scrape(port: int) -> dict[str, float]:
    """The worker's batch and commit counters from its Prometheus /metrics."""
    wanted = (
        "migrator_batch_inputs_count",
        "migrator_batch_inputs_sum",
        "migrator_transaction_commit_seconds_count",
        "migrator_transaction_commit_seconds_sum",
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            values[name] = float(value)
    return values


def inside(before: dict[str, float], after: dict[str, float]) -> tuple[int, float, float]:
    def d(k: str) -> float:
        return after.get(k, 0.0) - before.get(k, 0.0)

    batches = d("migrator_batch_inputs_count")
    commits = d("migrator_transaction_commit_seconds_count")
    return (
        int(batches),
        d("migrator_batch_inputs_sum") / batches if batches else float("nan"),
        d("migrator_transaction_commit_seconds_sum") / commits if commits else float("nan"),
    )


def start_process(
    variant: Variant, settings: Settings, log: Path, metrics_port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "KAFKA_APP_ID": settings.kafka.app_id,
        "KAFKA_TOPIC_PARTITIONS": str(settings.kafka.topic_partitions),
        "WORKER_PROCESSING_GUARANTEE": settings.worker.processing_guarantee,
        "WORKER_ID": settings.worker.id,
        "WORKER_METRICS_PORT": str(metrics_port),
        "PYTHONUNBUFFERED": "1",
    }
    if variant.peer_outputs:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "peer-worker",
            "--outputs",
            str(variant.peer_outputs),
        ]
    else:
        cmd = [sys.executable, "-m", "streams", "worker"]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_variant(args: argparse.Namespace, run_id: str, variant: Variant, logs: Path) -> Result:
    settings = settings_for(args, run_id, variant.name, variant.guarantee)
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    ensure_topics(settings)
    result = Result(variant, args.n)
    result.preload_s = preload(settings, names.commands, commands(f"{variant.name}-t", args.n))
    lat_cmds = commands(f"{variant.name}-l", int(args.rate * args.duration))
    per = variant.events_per_input
    watcher = Watcher(settings, names.events)
    watcher.start()
    log = logs / f"{variant.name}.log"
    port = 0 if variant.peer_outputs else _free_port()
    started = time.monotonic()
    proc = start_process(variant, settings, log, port)
    marks: list[dict[str, float]] = []
    try:
        # throughput
        target = per * args.n
        deadline = started + args.timeout
        cpu_first = None
        while watcher.count < target:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}): {_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{watcher.count}/{target} outputs after {args.timeout}s")
            if cpu_first is None and watcher.first_at is not None:
                cpu_first = (time.monotonic(), cpu_seconds(proc.pid), cpu_seconds(args.broker_pid))
                if port:
                    marks.append(scrape(port))
            time.sleep(0.005)
        done = time.monotonic()
        assert watcher.first_at is not None
        result.startup_s = watcher.first_at - started
        result.steady_s = done - watcher.first_at
        result.steady_inputs = (target - watcher.first_count) // per
        result.wall_s = done - started
        if cpu_first is not None and done > cpu_first[0]:
            span = done - cpu_first[0]
            result.cpu_pct = 100 * (cpu_seconds(proc.pid) - cpu_first[1]) / span
            result.broker_cpu_pct = 100 * (cpu_seconds(args.broker_pid) - cpu_first[2]) / span
        if port:
            marks.append(scrape(port))
            if len(marks) == 2:
                result.inside["throughput"] = inside(*marks)
        # latency
        if lat_cmds:
            latency_phase(args, settings, names.commands, lat_cmds, watcher, variant, result)
            if port:
                result.inside["latency"] = inside(marks[-1], scrape(port))
        result.outputs_expected = per * (args.n + len(lat_cmds))
        time.sleep(0.3)  # a late duplicate would show here
        result.outputs_seen = watcher.count
        result.undecodable = watcher.undecodable
    except Exception as exc:  # report it in the table, go on with the next variant
        result.error = str(exc)[:300]
    finally:
        stop_process(proc)
        watcher.halt.set()
        watcher.join(5)
    return result


def latency_phase(
    args: argparse.Namespace,
    settings: Settings,
    topic: str,
    cmds: list[Encoded],
    watcher: Watcher,
    variant: Variant,
    result: Result,
) -> None:
    producer = clients.producer(settings)
    watcher.cause = variant.cause
    sent = watcher.sent
    start = time.monotonic()
    for i, (key, value, headers, cid) in enumerate(cmds):
        delay = start + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[cid] = time.monotonic()
        produce(producer, topic, key, value, headers)
    result.lat_rate = len(cmds) / (time.monotonic() - start)
    producer.flush(30)
    deadline = time.monotonic() + 15
    while len(watcher.seen) < len(cmds) and time.monotonic() < deadline:
        time.sleep(0.01)
    result.lat_sent = len(cmds)
    result.latencies = list(watcher.seen.values())


def _tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# --- the peer: a minimal transactional copy ---------------------------------------------


def peer_worker(argv: list[str]) -> int:
    """`orchestrator.py peer-worker --outputs 1|4`, configured by the same
    environment variables as the worker; runs until SIGTERM."""
    parser = argparse.ArgumentParser(prog="orchestrator.py peer-worker")
    parser.add_argument("--outputs", type=int, choices=(1, 4), default=1)
    outputs = parser.parse_args(argv).outputs
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    copy_loop(Settings(), outputs, stop)
    return 0


def next_batch(consumer: Consumer) -> list[Message]:
    """As the worker polls (streams.orchestrator.loop): wait for the first
    input only, then take what is already fetched, up to a batch."""
    first = consumer.poll(POLL_TIMEOUT)
    if first is None:
        return []
    return [first, *consumer.consume(BATCH - 1, 0)]


def copy_loop(settings: Settings, outputs: int, stop: threading.Event, until: int = 0) -> None:
    """The peer: per batch, begin; one (or 4) outputs per input; offsets; commit.
    Stops when `stop` is set, or after `until` inputs when that is not 0."""
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    producer = Producer(
        producer_config(
            settings,
            **{
                "transactional.id": f"{settings.kafka.app_id}-peer",
                "transaction.timeout.ms": settings.worker.transaction_timeout_ms,
            },
        )
    )
    producer.init_transactions(30)
    consumer = Consumer(consumer_config(settings, settings.kafka.app_id))
    consumer.subscribe([names.commands, names.phase_results])
    done = 0
    try:
        while not stop.is_set() and not (until and done >= until):
            msgs = [m for m in next_batch(consumer) if m.error() is None]
            if not msgs:
                continue
            producer.begin_transaction()
            last: dict[tuple[str, int], int] = {}
            for m in msgs:
                key, value, headers, part = m.key(), m.value(), m.headers(), m.partition()
                _produce(producer, names.events, key, value, headers)
                if outputs == 4:
                    _produce(producer, names.events, key, value, headers)
                    _produce(producer, names.phase_tasks, key, value, headers)
                    _produce(producer, names.state_changelog, key, value, headers, part)
                last[(cast(str, m.topic()), cast(int, part))] = cast(int, m.offset()) + 1
            offsets = [TopicPartition(t, p, o) for (t, p), o in last.items()]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            done += len(msgs)
    finally:
        consumer.close()
        producer.flush(30)


# --- profile: the EOS loop in this process ----------------------------------------------


class Steps:
    """Accumulated wall time and calls per step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[label] += time.perf_counter() - t0
                self.calls[label] += 1

        return timed


@contextmanager
def patched(module: Any, **attrs: Any) -> Iterator[None]:
    old = {k: getattr(module, k) for k in attrs}
    for k, v in attrs.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(module, k, v)


def profile_loop(
    args: argparse.Namespace,
    run_id: str,
    name: str,
    n: int,
    steps: Steps | None,
    prof: cProfile.Profile | None,
) -> float:
    """Run OrchestratorLoop (EOS) in this thread on n preloaded inputs until they
    are all committed; returns the seconds from the first batch to the last."""
    import streams.orchestrator.committer as C
    import streams.orchestrator.loop as L

    settings = settings_for(args, run_id, name, "exactly_once")
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    ensure_topics(settings)
    preload(settings, names.commands, commands(f"{name}-t", n))
    window: dict[str, float] = {}
    stop = threading.Event()
    guard = threading.Timer(args.timeout, stop.set)  # never hang on a loop that stalls
    guard.daemon = True

    def run(loop: L.OrchestratorLoop) -> float:
        guard.start()
        try:
            loop.run()
        finally:
            guard.cancel()
        if "end" not in window:
            raise RuntimeError(f"profile run {name}: not all {n} inputs in {args.timeout}s")
        return window["end"] - window["start"]

    class Loop(L.OrchestratorLoop):
        done = 0

        def _batch(self, msgs: Any) -> None:
            if not window:
                window["start"] = time.perf_counter()
                if prof is not None:
                    prof.enable()
            super()._batch(msgs)
            self.done += len(msgs)
            if self.done >= n:
                window["end"] = time.perf_counter()
                if prof is not None:
                    prof.disable()
                self.stop.set()

    if steps is None:
        return run(Loop(settings, stop))

    st: Steps = steps
    w = st.wrap
    orig = vars(L)

    class TimedProducer(Producer):
        produce = w("produce (librdkafka enqueue)", Producer.produce)
        begin_transaction = w("begin_transaction", Producer.begin_transaction)
        send_offsets_to_transaction = w(
            "send_offsets_to_transaction", Producer.send_offsets_to_transaction
        )
        commit_transaction = w("commit_transaction", Producer.commit_transaction)

    class TimedConsumer(Consumer):
        def consume(self, *a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            msgs = super().consume(*a, **k)
            if window:  # only once batches flow (not the group join)
                st.seconds["consume (fetch wait)"] += time.perf_counter() - t0
                st.calls["consume (fetch wait)"] += 1
            return msgs

    class TimedConsumed:
        of = staticmethod(w("Consumed.of (copy out of Message)", Consumed.of))

    class TimedLoop(Loop):
        _one = w("_one: one input, all of it", Loop._one)
        _count = w("metrics (prometheus counters)", Loop._count)

    with (
        patched(clients, Producer=TimedProducer, Consumer=TimedConsumer),
        patched(C, state_bytes=w("state_bytes (JSON changelog, at commit)", C.state_bytes)),
        patched(
            C.Committer,
            _keep_staged=w("_keep_staged (+ count_active)", C.Committer._keep_staged),
        ),
        patched(
            L,
            Consumed=TimedConsumed,
            decode_command=w("decode (Avro)", orig["decode_command"]),
            handle=w("handle (decide + evolve + task_for)", orig["handle"]),
            encode=w("encode (Avro, events + tasks)", orig["encode"]),
            now=w("now() timestamp", orig["now"]),
        ),
    ):
        return run(TimedLoop(settings, stop))


def print_steps(steps: Steps, n: int, seconds: float) -> None:
    s = steps.seconds
    inner = [
        "decode (Avro)",
        "handle (decide + evolve + task_for)",
        "now() timestamp",
        "encode (Avro, events + tasks)",
        "produce (librdkafka enqueue)",  # the changelog's, at commit, too: rest is low by that
        "metrics (prometheus counters)",
    ]
    rows = [(k, s[k]) for k in inner]
    rows.append(
        (
            "rest of _one (dispatch, dataclass, send)",
            s["_one: one input, all of it"] - sum(s[k] for k in inner),
        )
    )
    for k in (
        "state_bytes (JSON changelog, at commit)",
        "Consumed.of (copy out of Message)",
        "consume (fetch wait)",
        "begin_transaction",
        "send_offsets_to_transaction",
        "commit_transaction",
        "_keep_staged (+ count_active)",
    ):
        rows.append((k, s[k]))
    rows.append(("other (loop, list comps, _usable ...)", seconds - sum(v for _, v in rows)))
    print(
        f"  EOS loop in-process, {n:,} inputs in {seconds:.2f}s = {n / seconds:,.0f} inputs/s"
        f" (step timers on; {steps.calls['commit_transaction']} transactions,"
        f" {n / max(1, steps.calls['commit_transaction']):.0f} inputs each)"
    )
    print(f"  {'step':44} {'seconds':>8} {'share':>6} {'µs/input':>9}")
    for k, v in sorted(rows, key=lambda r: -r[1]):
        print(f"  {k:44} {v:8.2f} {100 * v / seconds:5.1f}% {1e6 * v / n:9.1f}")


AREAS = [
    ("librdkafka calls (cimpl)", ("cimpl", "confluent_kafka")),
    ("fastavro", ("fastavro",)),
    ("schemas/ (codec, records, avro glue)", ("/schemas/",)),
    ("domain/ (decide, evolve, tasks)", ("/domain/",)),
    ("prometheus_client", ("prometheus_client",)),
    ("streams/orchestrator/ + streams/kafka/", ("/streams/orchestrator/", "/streams/kafka/")),
    ("dataclasses / typing / abc", ("dataclasses", "typing", "abc.py", "isinstance")),
    ("json", ("json",)),
    ("datetime", ("datetime", "isoformat", "built-in method now")),
]


def print_cprofile(prof: cProfile.Profile, n: int, seconds: float, top: int) -> None:
    stats = pstats.Stats(prof)
    rows = []
    by_area: dict[str, float] = defaultdict(float)
    total = 0.0
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{func}" if file == "~" else f"{_short(file)}:{line}({func})"
        rows.append((tt, ct, nc, where))
        total += tt
        haystack = f"{file} {func}"
        for area, needles in AREAS:
            if any(x in haystack for x in needles):
                by_area[area] += tt
                break
        else:
            by_area["other (builtins, stdlib)"] += tt
    print(
        f"  cProfile, EOS loop in-process, {n:,} inputs in {seconds:.2f}s ="
        f" {n / seconds:,.0f} inputs/s (profiler overhead included)"
    )
    print(f"  own time by area (of {total:.2f}s profiled):")
    for area, tt in sorted(by_area.items(), key=lambda r: -r[1]):
        print(f"    {area:44} {tt:6.2f}s {100 * tt / total:5.1f}% {1e6 * tt / n:7.1f} µs/input")
    print(f"  top {top} functions by own time:")
    print(f"    {'own s':>6} {'cum s':>6} {'calls':>8}  function")
    for tt, ct, nc, where in sorted(rows, reverse=True)[:top]:
        print(f"    {tt:6.2f} {ct:6.2f} {nc:8d}  {where}")


def _short(path: str) -> str:
    for marker in ("/site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# --- broker, clean-up, main ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_broker() -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="bench-kafka-", dir=ROOT / ".local"))
    env = {
        **os.environ,
        "KAFKA_HOME_DIR": str(home),
        "KAFKA_LIB_DIR": os.environ.get("KAFKA_LIB_DIR", str(ROOT / ".local/kafka/lib")),
        "KAFKA_PORT": str(_free_port()),
        "KAFKA_CONTROLLER_PORT": str(_free_port()),
    }
    server = str(ROOT / "scripts/kafka/server")
    try:
        out = subprocess.run(
            [server, "start"], env=env, check=True, capture_output=True, text=True, timeout=180
        )
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([server, "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def delete_run(bootstrap: str, run_id: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    prefix = f"bench-{run_id}-"
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if topics:
        for fut in admin.delete_topics(topics, operation_timeout=30).values():
            with suppress(KafkaException):
                fut.result(30)
    groups = [
        g.group_id
        for g in admin.list_consumer_groups().result(10).valid
        if g.group_id.startswith(prefix)
    ]
    if groups:
        for fut in admin.delete_consumer_groups(groups, request_timeout=10).values():
            with suppress(KafkaException):
                fut.result(10)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a and b and a == a and b == b else "n/a"


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(
        f"{'variant':30} {'inputs/s':>9} {'wall s':>7} {'start s':>7} {'cpu %':>6} {'µs/in':>6}"
        f" {'broker':>6}"
        f" {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'seen':>9}  outputs"
    )
    for r in results:
        if r.error and not r.steady_s:
            print(f"{r.variant.label:30} FAILED: {r.error}")
            continue
        got = f"{len(r.latencies)}/{r.lat_sent}"
        check = (
            "ok"
            if r.outputs_seen == r.outputs_expected
            else (f"{r.outputs_seen} of {r.outputs_expected} expected")
        )
        print(
            f"{r.variant.label:30} {r.rate:9,.0f} {r.wall_s:7.2f} {r.startup_s:7.2f}"
            f" {r.cpu_pct:6.0f} {r.cpu_us:6.0f} {r.broker_cpu_pct:6.0f} {1000 * r.pct(0.50):7.1f}"
            f" {1000 * r.pct(0.99):7.1f} {1000 * r.pct(1.0):7.1f} {got:>9}  {check}"
        )
        if r.error:
            print(f"{'':30} error: {r.error}")
    print()
    print("  inputs/s: after the first visible batch (startup excluded); wall s: from")
    print("  process start to all N visible; start s: process start to first visible output;")
    print("  cpu %: the worker process during the steady part (100 = one core); µs/in: its")
    print("  CPU per input; broker: the broker's CPU % in the same window (nan: pid unknown);")
    print(
        f"  latency: {args.rate:g}/s for {args.duration:g}s, produce -> first output visible"
        " (read_committed); seen: matched/sent"
    )
    by = {r.variant.name: r for r in results}

    def get(name: str, what: str) -> float:
        r = by.get(name)
        if r is None or not r.steady_s:
            return 0.0
        if what == "cpu":
            return r.cpu_us
        return r.rate if what == "rate" else 1000 * r.pct(0.5 if what == "p50" else 0.99)

    pairs = [
        ("EOS/peer", "eos", "peer"),
        ("ALOS/peer", "alos", "peer"),
        ("EOS/ALOS", "eos", "alos"),
        ("EOS/peer4", "eos", "peer4"),
        ("peer4/peer", "peer4", "peer"),
    ]
    inner = [r for r in results if r.inside]
    if inner:
        print()
        print("inside the worker (its /metrics): transactions (batches for at_least_once),")
        print("inputs per transaction, mean ms to send offsets + commit")
        for r in inner:
            cells = [
                f"{phase}: {n} x {size:.0f} inputs, commit {1000 * commit:.1f} ms"
                for phase, (n, size, commit) in r.inside.items()
            ]
            print(f"  {r.variant.label:30} " + "; ".join(cells))
    print()
    print(f"{'ratio':14} {'inputs/s':>9} {'p50':>7} {'p99':>7} {'cpu/input':>10}")
    for label, a, b in pairs:
        if a in by and b in by:
            print(
                f"{label:14} {ratio(get(a, 'rate'), get(b, 'rate')):>9}"
                f" {ratio(get(a, 'p50'), get(b, 'p50')):>7}"
                f" {ratio(get(a, 'p99'), get(b, 'p99')):>7}"
                f" {ratio(get(a, 'cpu'), get(b, 'cpu')):>10}"
            )


def main(argv: list[str]) -> int:
    if argv[:1] == ["peer-worker"]:
        return peer_worker(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:39092")
    )
    parser.add_argument(
        "--start-broker",
        action="store_true",
        help="start a private broker on free ports (scripts/kafka/server),"
        " stop and delete it afterwards (adds ~15 s)",
    )
    parser.add_argument("--n", type=int, default=20_000, help="inputs in the throughput phase")
    parser.add_argument("--rate", type=float, default=500.0, help="latency phase: commands/s")
    parser.add_argument("--duration", type=float, default=10.0, help="latency phase: seconds")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="give up on a throughput phase after this many seconds",
    )
    parser.add_argument(
        "--only",
        default="eos,alos,peer,peer4",
        help="comma-separated variants (eos, alos, peer, peer4)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=5000,
        help="inputs copied transactionally before measuring, to warm the broker's JIT",
    )
    parser.add_argument(
        "--profile-n", type=int, default=5000, help="inputs for each profile run (0: no profile)"
    )
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--top", type=int, default=15, help="cProfile: functions to list")
    parser.add_argument("--keep", action="store_true", help="keep topics, groups and logs")
    args = parser.parse_args(argv)
    wanted = [v.strip() for v in args.only.split(",") if v.strip()]
    variants = [v for v in (EOS, ALOS, PEER, PEER4) if v.name in wanted]
    profile_n = 0 if args.no_profile else args.profile_n

    with private_broker() if args.start_broker else _given(args.bootstrap) as bootstrap:
        args.bootstrap = bootstrap
        args.broker_pid = broker_pid(bootstrap)
        return _run(args, variants, profile_n)


@contextmanager
def _given(bootstrap: str) -> Iterator[str]:
    yield bootstrap


def _run(args: argparse.Namespace, variants: list[Variant], profile_n: int) -> int:
    run_id = uuid.uuid4().hex[:6]
    logs = Path(tempfile.mkdtemp(prefix=f"bench-orchestrator-{run_id}-"))
    load = os.getloadavg()
    print(
        f"orchestrator benchmark {run_id}: broker {args.bootstrap}, {args.partitions} partitions,"
        f" N={args.n:,}, latency {args.rate:g}/s x {args.duration:g}s, batch {BATCH}"
    )
    print(
        f"  {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f};"
        f" Python {sys.version.split()[0]}, confluent-kafka {ck_version()[0]};"
        f" worker logs in {logs}"
    )
    t0 = time.monotonic()
    results: list[Result] = []
    failed = False
    try:
        if args.warmup:
            warm = settings_for(args, run_id, "warmup", "exactly_once")
            ensure_topics(warm)
            names = KafkaNames(app_id=warm.kafka.app_id, prefix=warm.kafka.topic_prefix)
            preload(warm, names.commands, commands("warm", args.warmup))
            copy_loop(warm, 4, threading.Event(), until=args.warmup)
            print(f"  warm-up: {args.warmup:,} inputs copied in {time.monotonic() - t0:.1f}s")
        for v in variants:
            r = run_variant(args, run_id, v, logs)
            failed |= bool(r.error)
            results.append(r)
            print(
                f"  {v.label}: {r.rate:,.0f} inputs/s, p50 {1000 * r.pct(0.5):.1f} ms"
                f" (preload {args.n / r.preload_s:,.0f} commands/s)"
                + (f" ERROR {r.error}" if r.error else ""),
                flush=True,
            )
        print_table(results, args)
        if profile_n:
            print()
            print("where the EOS worker's time goes")
            steps = Steps()
            seconds = profile_loop(args, run_id, "prof-steps", profile_n, steps, None)
            print_steps(steps, profile_n, seconds)
            print()
            prof = cProfile.Profile()
            seconds = profile_loop(args, run_id, "prof-cprofile", profile_n, None, prof)
            print_cprofile(prof, profile_n, seconds, args.top)
    finally:
        if not args.keep:
            delete_run(args.bootstrap, run_id)
            if not failed:
                shutil.rmtree(logs, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"\ntotal {time.monotonic() - t0:.0f}s; load average now"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

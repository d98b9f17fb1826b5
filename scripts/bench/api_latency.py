"""Benchmark: command -> read model latency through the HTTP API, at steady rates.

    .local/venv/bin/python scripts/bench/api_latency.py                       # 20/s for 20 s
    .local/venv/bin/python scripts/bench/api_latency.py --rates 100,300,500,700,1000 --duration 20
    .local/venv/bin/python scripts/bench/api_latency.py --rates 1000 --duration 60

The orchestrator worker, the projector and the API run as processes (as in
production) on a fresh topic prefix and database of the local stack. The
benchmark sends `POST /api/v1/migrations?wait=true` at a fixed rate (open
loop: a request leaves on schedule whether or not earlier ones have
answered, on a connection of its own when none is free, up to
`--connections`); each one's
latency is the time until the API answers, 200 meaning the projected read
model shows the command's effect (Kafka -> orchestrator transaction ->
read_committed projector -> PostgreSQL commit -> NOTIFY -> the API). For
scale, `GET /health` is measured at the same rate in the same run (the HTTP
round trip alone).

Per rate it prints: the rate offered and the rate of 200s achieved; every
status with its count (and the reasons of the others); p50/p90/p99/max of
the 200s; where the time of the 200s went, stage by stage (from the command
record's timestamp, the event's `occurred_at`, and the NOTIFY the benchmark
hears itself); the CPU of each process in % of one core (the broker and
PostgreSQL are shared with whatever else runs on this machine, and so is the
machine's total) and the peak memory of the system's processes. It asserts
nothing and never stops at an error: an answer that is not 200 is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support

import contextlib

from cli.topics import create_topics
from config import KafkaNames, Settings
from projections.store import CHANNEL
from tests.support.processes import Processes, eventually, group_is_stable, http
from tests.support.stack import free_port
from tests.support.system import SPEC
from tests.support.tables import fresh_database

TOKEN = "bench-operator-token-0123456789"
TICK = os.sysconf("SC_CLK_TCK")
SYSTEM = ("api", "worker", "projector")


# --- one request ---------------------------------------------------------------------


@dataclass
class Answer:
    """One request: when it left (wall clock), how long until its answer, what it was."""

    migration_id: str
    sent: float
    seconds: float
    status: str  # the HTTP status, or "timeout" / the client error's name
    reason: str = ""


async def send(
    session: aiohttp.ClientSession, method: str, url: str, body: object, mid: str
) -> Answer:
    sent, began = time.time(), time.perf_counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with session.request(method, url, json=body, headers=headers) as resp:
            text = await resp.text()
            status, reason = str(resp.status), "" if resp.status == 200 else _why(resp, text)
    except TimeoutError:
        status, reason = "timeout", ""
    except aiohttp.ClientError as exc:
        status, reason = type(exc).__name__, str(exc)[:80]
    return Answer(mid, sent, time.perf_counter() - began, status, reason)


def _why(resp: aiohttp.ClientResponse, text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return resp.reason or ""
    if not isinstance(body, dict):
        return resp.reason or ""
    parts = [str(body.get(k)) for k in ("title", "detail", "outcome") if body.get(k)]
    return "; ".join(parts)[:100]


async def steady(rate: float, seconds: float, request: Callable[[], Awaitable[Answer]]) -> Sent:
    """Start one request every 1/rate s for `seconds`; the answers, and when the last left."""
    tasks: list[asyncio.Task[Answer]] = []
    began = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(request()))
    sending = time.perf_counter() - began
    return Sent(list(await asyncio.gather(*tasks)), sending)


@dataclass
class Sent:
    answers: list[Answer]
    sending: float  # seconds from the first request to the last one's departure


# --- CPU and memory of processes -----------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_ticks(pid: int, children: bool = False) -> int:
    """User + system ticks of `pid` (and of its reaped children)."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0
    used = int(fields[11]) + int(fields[12])
    return used + (int(fields[13]) + int(fields[14]) if children else 0)


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == parent:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def listener_pid(port: int) -> int | None:
    """The process listening on TCP `port` (the broker, the postmaster)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of every core, from /proc/stat."""
    cols = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = cols[3] + cols[4]
    return sum(cols) - idle, sum(cols)


@dataclass
class Meter:
    """CPU (in % of one core) of named processes over a span, and their peak memory."""

    pids: dict[str, int]
    postmaster: int | None
    database: str  # its backends' CPU is counted apart from the others'
    _start: dict[str, int] = field(default_factory=dict)
    _machine: tuple[int, int] = (0, 0)
    _began: float = 0.0
    peak: dict[str, float] = field(default_factory=dict)

    def ticks(self) -> dict[str, int]:
        used = {name: cpu_ticks(pid) for name, pid in self.pids.items()}
        if self.postmaster is not None:
            backends = children_of(self.postmaster)
            used["postgresql (all)"] = cpu_ticks(self.postmaster, children=True) + sum(
                cpu_ticks(c) for c in backends
            )
            used["postgresql (this database)"] = sum(
                cpu_ticks(c) for c in backends if self.database in _cmdline(c)
            )
        load = os.times()
        used["load generator"] = int((load.user + load.system) * TICK)
        return used

    def start(self) -> None:
        self._start, self._machine, self._began = self.ticks(), machine_ticks(), time.time()
        self.peak = {}

    def sample_memory(self) -> None:
        for name in SYSTEM:
            if name in self.pids:
                self.peak[name] = max(self.peak.get(name, 0.0), rss_mib(self.pids[name]))

    def report(self) -> tuple[dict[str, float], float, float]:
        """% of one core per process, the machine's busy cores, and the seconds, since start()."""
        seconds = max(time.time() - self._began, 1e-9)
        end, (busy, total) = self.ticks(), machine_ticks()
        per = {n: 100 * (end[n] - self._start.get(n, 0)) / TICK / seconds for n in end}
        cores = os.cpu_count() or 1
        machine = cores * (busy - self._machine[0]) / max(total - self._machine[1], 1)
        return per, machine, seconds


async def watch_memory(meter: Meter, stop: asyncio.Event) -> None:
    while not stop.is_set():
        meter.sample_memory()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


# --- where the time went --------------------------------------------------------------


class Heard:
    """The benchmark's own LISTEN: when each migration's first change was committed."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.at = dsn, dict[str, float]()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heard:
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await conn.execute(f"LISTEN {CHANNEL}")
        self._task = asyncio.create_task(self._listen(conn))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _listen(self, conn: psycopg.AsyncConnection[object]) -> None:
        async with conn:
            async for note in conn.notifies():
                now = time.time()
                try:
                    changed = json.loads(note.payload)["m"]
                except (ValueError, KeyError, TypeError):
                    continue
                for mid in changed:
                    self.at.setdefault(mid, now)


def produced_at(settings: Settings, topic: str) -> dict[str, float]:
    """Each command record's timestamp (set by the API's producer), by migration id."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"bench-read-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    try:
        parts = consumer.list_topics(topic, 10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        found: dict[str, float] = {}
        left = {p for p, end in ends.items() if end > 0}
        while left:
            for msg in consumer.consume(1000, 2.0):
                if msg.error() is not None:
                    continue
                found[(msg.key() or b"").decode()] = msg.timestamp()[1] / 1000
                if msg.offset() + 1 >= ends[msg.partition() or 0]:
                    left.discard(msg.partition() or 0)
        return found
    finally:
        consumer.close()


def handled_at(dsn: str) -> dict[str, float]:
    """When the orchestrator handled each migration's first command (its events' time)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT migration_id, min(occurred_at) FROM migration_events GROUP BY migration_id"
        ).fetchall()
    return {mid: at.timestamp() for mid, at in rows if isinstance(at, datetime)}


STAGES = (
    "HTTP in -> command produced (API)",
    "produced -> handled (Kafka, orchestrator)",
    "handled -> projector commit heard",
    "commit heard -> answer received (API)",
)


def stages(
    answers: Iterable[Answer],
    produced: dict[str, float],
    handled: dict[str, float],
    heard: dict[str, float],
) -> list[tuple[str, list[float]]]:
    spans: list[list[float]] = [[] for _ in STAGES]
    for a in answers:
        marks = (produced.get(a.migration_id), handled.get(a.migration_id))
        noted = heard.get(a.migration_id)
        if a.status != "200" or None in marks or noted is None:
            continue
        times = [a.sent, *marks, noted, a.sent + a.seconds]
        for i in range(len(STAGES)):
            spans[i].append(times[i + 1] - times[i])  # type: ignore[operator]
    return list(zip(STAGES, spans, strict=True))


# --- the API's own view -----------------------------------------------------------------

SERVER = ("migrator_api_request_seconds_bucket{", 'method="POST",route="/api/v1/migrations"}')


async def server_buckets(session: aiohttp.ClientSession, url: str) -> dict[float, float]:
    """The API's histogram of its time inside POST /api/v1/migrations: le -> count."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    found = {}
    for line in text.splitlines():
        if line.startswith(SERVER[0]) and SERVER[1] in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            found[float(le)] = float(line.rsplit(" ", 1)[1])
    return found


def server_quantiles(before: dict[float, float], after: dict[float, float]) -> str:
    """p50/p99 of the API's own time (the bucket each falls in), over a span."""
    counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = counts[-1][1] if counts else 0.0
    if not total:
        return "n=0"

    def bound(q: float) -> str:
        le = next(le for le, n in counts if n >= q * total)
        return f"<= {le * 1000:g} ms" if le != float("inf") else "> the last bucket"

    return f"n={total:>6.0f}  p50 {bound(0.5)}  p99 {bound(0.99)}"


# --- figures --------------------------------------------------------------------------


def quantiles(seconds: list[float]) -> str:
    if not seconds:
        return "n=0"
    ms = sorted(x * 1000 for x in seconds)
    q = statistics.quantiles(ms, n=100) if len(ms) > 1 else [ms[0]] * 99
    return (
        f"n={len(ms):>6}  p50 {q[49]:8.1f}  p90 {q[89]:8.1f}  p99 {q[98]:8.1f}"
        f"  max {ms[-1]:8.1f} ms"
    )


@dataclass
class Step:
    rate: float
    seconds: float
    commands: Sent
    health: Sent
    cpu: dict[str, float]
    machine: float
    span: float  # seconds the CPU was measured over
    peak: dict[str, float]
    server: str  # the API's own time inside the handler

    def print(self) -> None:
        answers = self.commands.answers
        ok = [a for a in answers if a.status == "200"]
        first = min(a.sent for a in answers)
        last = max((a.sent + a.seconds for a in ok), default=first)
        offered = len(answers) / max(self.commands.sending, 1e-9)
        print(f"\n== {self.rate:g} commands/s for {self.seconds:g} s")
        print(
            f"  offered {offered:7.1f}/s ({len(answers)} sent);"
            f" achieved {len(ok) / max(last - first, 1e-9):7.1f} 200s/s"
            f" (first send to last 200: {last - first:.1f} s)"
        )
        counts = Counter(a.status for a in answers)
        print("  statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
        reasons = Counter((a.status, a.reason) for a in answers if a.status != "200")
        for (status, reason), n in reasons.most_common(5):
            print(f"    {status} x{n}: {reason}")
        print(f"  {'POST ?wait=true, 200s':<42} {quantiles([a.seconds for a in ok])}")
        for status in sorted(counts):
            if status != "200":
                them = [a.seconds for a in answers if a.status == status]
                print(f"  {'POST ?wait=true, ' + status:<42} {quantiles(them)}")
        print(f"  {'the same, inside the API (all statuses)':<42} {self.server}")
        hok = [a.seconds for a in self.health.answers if a.status == "200"]
        print(f"  {'GET /health (same rate), 200s':<42} {quantiles(hok)}")
        cpu = ", ".join(f"{n} {v:.0f}%" for n, v in self.cpu.items())
        print(f"  CPU (% of one core): {cpu}")
        per = ", ".join(
            f"{n} {v / 100 * self.span / len(answers) * 1000:.2f}" for n, v in self.cpu.items()
        )
        print(f"  CPU ms per command sent: {per}")
        print(f"  machine: {self.machine:.2f} of {os.cpu_count()} cores busy (everyone's work)")
        mem = ", ".join(f"{n} {v:.0f} MiB" for n, v in self.peak.items())
        print(f"  peak memory: {mem}")


async def measure(
    url: str, args: argparse.Namespace, meter: Meter, dsn: str
) -> tuple[list[Step], dict[str, float]]:
    timeout = aiohttp.ClientTimeout(total=args.wait + args.grace)
    connector = aiohttp.TCPConnector(limit=args.connections)
    create = f"{url}/api/v1/migrations?wait=true&timeout={args.wait:g}"
    steps = []
    async with (
        aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
        Heard(dsn) as heard,
    ):
        await send(session, "POST", create, {"spec": SPEC}, "warm-up")
        for rate in args.rates:
            inside = await server_buckets(session, url)
            meter.start()
            stop = asyncio.Event()
            memory = asyncio.create_task(watch_memory(meter, stop))

            def command() -> Awaitable[Answer]:
                mid = f"m-{uuid.uuid4().hex[:12]}"
                body = {"spec": SPEC, "migration_id": mid}
                return send(session, "POST", create, body, mid)

            commands = await steady(rate, args.duration, command)
            stop.set()
            await memory
            cpu, machine, span = meter.report()
            server = server_quantiles(inside, await server_buckets(session, url))
            health = await steady(
                rate,
                min(args.duration, 5.0),
                lambda: send(session, "GET", f"{url}/health", None, "health"),
            )
            steps.append(
                Step(
                    rate,
                    args.duration,
                    commands,
                    health,
                    cpu,
                    machine,
                    span,
                    dict(meter.peak),
                    server,
                )
            )
            steps[-1].print()
            await asyncio.sleep(args.pause)
        return steps, heard.at


def more_files() -> None:
    """Open loop at hundreds of requests a second holds a connection each: the
    load generator and the processes it starts may open as many files as allowed."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    more_files()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="commands per second")
    parser.add_argument(
        "--rates", type=lambda s: [float(x) for x in s.split(",")], help="several, in turn"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--wait", type=float, default=10.0, help="the API's ?timeout= (s)")
    parser.add_argument("--grace", type=float, default=5.0, help="client timeout past --wait")
    parser.add_argument(
        "--connections",
        type=int,
        default=2000,
        help="the client's cap on connections (0: none); a request waits for one, and the wait"
        " counts in its latency (aiohttp's default of 100 held the old runs near 500/s)",
    )
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between rates")
    parser.add_argument("--bootstrap", default="127.0.0.1:39092")
    parser.add_argument("--database", default="postgresql://migrator@127.0.0.1:35432/migrations")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the API")
    args = parser.parse_args()
    args.rates = args.rates or [args.rate]

    run = uuid.uuid4().hex[:6]
    name = f"bench_api_{run}"
    print(
        f"run {run}: rates {','.join(f'{r:g}' for r in args.rates)} commands/s,"
        f" {args.duration:g} s each; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with fresh_database(args.database, name) as dsn:
        run_system(args, run, dsn)


def run_system(args: argparse.Namespace, run: str, dsn: str) -> None:
    """Worker, projector and API as processes; the figures measured through them,
    printed before anything is cleaned up."""
    settings = Settings(
        kafka={
            "bootstrap_servers": args.bootstrap,
            "topic_prefix": f"bench-{run}.",
            "app_id": f"bench-{run}",
            "topic_partitions": 6,
        },
        database={"url": dsn},
        api={"port": free_port()},
    )
    procs = Processes(settings, Path(tempfile.mkdtemp(prefix="bench-api-")))
    try:
        create_topics(settings)
        procs.start("worker", extra_env={"WORKER_ID": f"bench-{run}"})
        procs.start("projector")
        tokens = json.dumps({TOKEN: "operator"})
        env = {"API_TOKENS": tokens, "API_RATE_PER_SECOND": "100000"}
        env.update(kv.split("=", 1) for kv in args.env)
        procs.start("api", extra_env=env)
        url = f"http://127.0.0.1:{settings.api.port}"
        eventually(lambda: http("GET", f"{url}/ready")[0] == 200)
        eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
        pids = {name: procs.running[name].pid for name in SYSTEM}
        broker = listener_pid(int(args.bootstrap.rsplit(":", 1)[1]))
        if broker is not None:
            pids["broker"] = broker
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
        meter = Meter(pids, listener_pid(int(str(parts["port"]))), f" {parts['dbname']} ")
        steps, heard = asyncio.run(measure(url, args, meter, dsn))
        names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        produced, handled = produced_at(settings, names.commands), handled_at(dsn)
        print("\n== where the time went, per rate (200s only, wall clock of one machine)")
        for step in steps:
            print(f"  {step.rate:g}/s:")
            for stage, spans in stages(step.commands.answers, produced, handled, heard):
                print(f"    {stage:<42} {quantiles(spans)}")
        print(f"\nlogs: {procs.logs}", flush=True)
    finally:
        procs.stop_all()
        delete_topics(settings)


def delete_topics(settings: Settings) -> None:
    """The run's own topics (its prefix and app id), on a shared broker."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    ours = {t.name for t in names.topic_specs(settings.kafka.topic_partitions)}
    there = ours & set(admin.list_topics(timeout=30).topics)
    for future in admin.delete_topics(sorted(there), operation_timeout=30).values():
        future.result()


if __name__ == "__main__":
    main()

"""Load test: many concurrent migrations of real tables through the whole system.

    .local/venv/bin/python scripts/bench/soak.py                     # 100 at once for 10 min
    .local/venv/bin/python scripts/bench/soak.py --concurrency 20 --duration 120

Not in CI. The orchestrator worker, the phase worker, the projector and the
API run as processes (as scripts/demo and the end-to-end tests start them),
on a fresh topic prefix and fresh databases of the local stack: a read model,
a source holding `--tables` tables of `--rows` rows each (the tests'
12-column customers), a target.

For `--duration` seconds, `--concurrency` clients each keep one migration in
flight: `POST /api/v1/migrations?wait=true` (a source table by turns, a target
table of its own), then wait on the API's live stream (`/api/v1/live`, one
WebSocket) until the read model shows it COMPLETED, FAILED or CANCELLED, check
that its target table holds every row, drop that table, and start the next.
After the window, the migrations in flight get `--drain` seconds to end.

Prints:

- throughput: migrations and rows per minute (completed within the window,
  and over the whole run including the drain);
- command latency, command -> read model: the `?wait=true` answer's time
  (p50/p90/p99/max), and a migration's whole time (command -> COMPLETED);
- errors: every answer other than 200 by status, migrations that failed, were
  cancelled, never ended, or whose target rows do not match; the error rate
  (failed migrations / migrations started); the bar: 0, and < 0.5 %;
- the CPU of each process (% of one core over the run);
- the peer, in the same run: the same tables moved by the raw binary
  `psql COPY … TO STDOUT | psql COPY … FROM STDIN` pipe, `--pipe-streams`
  at once (default: the phase worker's PHASE_CONCURRENCY, the batches it runs
  at once), for `--pipe-seconds`, before the system starts and again after it
  stops (the machine's load moves); rows per minute, and the ratio to their
  mean.

The sizes also come from the environment: SOAK_CONCURRENCY, SOAK_DURATION,
SOAK_ROWS (flags win). The databases and topics are dropped at the end, after
the figures; a cleanup that fails is a warning, never a lost run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from cli.topics import create_topics  # noqa: E402
from config import KafkaNames, Settings, load_settings  # noqa: E402
from tests.support.data_plane import connections_env  # noqa: E402
from tests.support.processes import Processes, eventually, group_is_stable, http  # noqa: E402
from tests.support.stack import drop_database, free_port  # noqa: E402
from tests.support.tables import CUSTOMERS, connection_for, create_customers  # noqa: E402

TOKEN = "soak-operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENDED = ("COMPLETED", "FAILED", "CANCELLED")
PROCESSES = ("worker", "phase-0", "projector", "api")


@dataclass
class Migration:
    migration_id: str
    source: str
    target: str
    sent: float
    answered: float | None = None
    status_code: int | None = None
    ended: float | None = None
    status: str | None = None
    reason: str | None = None
    rows: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Soak:
    """What the clients started and what the live stream saw."""

    args: argparse.Namespace
    api: str
    target_url: str
    migrations: dict[str, Migration] = field(default_factory=dict)
    answers: Counter[int] = field(default_factory=Counter)
    stream_errors: list[str] = field(default_factory=list)
    started: float = 0.0
    window_end: float = 0.0

    def seen(self, row: dict[str, Any]) -> None:
        m = self.migrations.get(str(row.get("migration_id")))
        status = str(row.get("status"))
        if m is None or m.ended is not None or status not in ENDED:
            return
        m.ended, m.status = time.perf_counter(), status
        m.reason = row.get("reason") or row.get("failure_reason")
        m.done.set()


# -- the load -------------------------------------------------------------------


async def follow(soak: Soak, session: aiohttp.ClientSession, ready: asyncio.Event) -> None:
    """The live stream of every migration's changes, resumed after a drop."""
    since: int | None = None
    while True:
        query = f"?since_version={since}" if since is not None else ""
        url = soak.api.replace("http://", "ws://") + f"/api/v1/live{query}"
        try:
            async with session.ws_connect(url, headers=AUTH, heartbeat=20) as ws:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    body = json.loads(message.data)
                    if body.get("type") == "hello":
                        ready.set()
                    elif body.get("type") == "changes":
                        for row in body.get("migrations", []):
                            soak.seen(row)
                        since = body.get("feed_version", since)
        except (aiohttp.ClientError, TimeoutError) as exc:
            soak.stream_errors.append(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(0.5)


async def client(soak: Soak, session: aiohttp.ClientSession, index: int) -> None:
    """One migration at a time until the window closes."""
    args, turn = soak.args, 0
    while time.perf_counter() < soak.window_end:
        number = index + turn * args.concurrency
        turn += 1
        m = Migration(
            migration_id=f"soak-{number:06d}-{uuid.uuid4().hex[:6]}",
            source=f"src_{number % args.tables}",
            target=f"t_{number:06d}",
            sent=time.perf_counter(),
        )
        soak.migrations[m.migration_id] = m
        spec = {
            "source_connection": "legacy",
            "source_table": m.source,
            "source_key": "id",
            "target_connection": "warehouse",
            "target_table": m.target,
            "batch_size": args.batch_size,
        }
        body = {"migration_id": m.migration_id, "spec": spec}
        url = f"{soak.api}/api/v1/migrations?wait=true&timeout=60"
        try:
            async with session.post(url, json=body, headers=AUTH) as resp:
                await resp.read()
                m.status_code = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            m.status_code = -1
            m.reason = f"{type(exc).__name__}: {exc}"
        m.answered = time.perf_counter()
        soak.answers[m.status_code] += 1
        if m.status_code not in (200, 202):  # not accepted: nothing to wait for
            m.status, m.ended = f"HTTP {m.status_code}", m.answered
            continue
        remaining = soak.window_end + args.drain - time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(m.done.wait(), max(remaining, 0.1))
        if m.status == "COMPLETED":
            m.rows = await asyncio.to_thread(count_and_drop, soak.target_url, m.target)


def count_and_drop(url: str, table: str) -> int:
    """The rows the target table holds; then the table goes (keeps the
    target database small over a long run)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
        conn.execute(f"DROP TABLE IF EXISTS {table}".encode())
    return int(row[0]) if row else -1


async def load(soak: Soak) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    connector = aiohttp.TCPConnector(limit=soak.args.concurrency + 10)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        ready = asyncio.Event()
        stream = asyncio.create_task(follow(soak, session, ready))
        await asyncio.wait_for(ready.wait(), 60)
        soak.started = time.perf_counter()
        soak.window_end = soak.started + soak.args.duration
        clients = [client(soak, session, i) for i in range(soak.args.concurrency)]
        await asyncio.gather(*clients)
        stream.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stream


# -- the limit: the raw pipe over the same tables --------------------------------


def pipe_rows_per_minute(args: argparse.Namespace, source: str, target: str) -> tuple[float, int]:
    """The same source tables copied by `--pipe-streams` binary COPY pipes at
    once for `--pipe-seconds`: rows per minute, and tables copied."""
    started = time.perf_counter()
    copied, number = 0, 0
    running: list[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]] = []
    while running or time.perf_counter() - started < args.pipe_seconds:
        while (
            len(running) < args.pipe_streams and time.perf_counter() - started < args.pipe_seconds
        ):
            table = f"pipe_{number}"
            with psycopg.connect(target, autocommit=True) as conn:
                conn.execute(CUSTOMERS.replace("customers", table, 1).encode())
            out = f"COPY src_{number % args.tables} TO STDOUT (FORMAT binary)"
            reader = subprocess.Popen(_psql(source, out), stdout=subprocess.PIPE)
            writer = subprocess.Popen(
                _psql(target, f"COPY {table} FROM STDIN (FORMAT binary)"), stdin=reader.stdout
            )
            assert reader.stdout is not None
            reader.stdout.close()
            running.append((reader, writer))
            number += 1
        reader, writer = running.pop(0)
        if reader.wait() or writer.wait():
            raise RuntimeError(
                f"the pipe failed: psql exited {reader.returncode}, {writer.returncode}"
            )
        copied += 1
    seconds = time.perf_counter() - started
    with psycopg.connect(target, autocommit=True) as conn:
        for i in range(number):
            conn.execute(f"DROP TABLE IF EXISTS pipe_{i}".encode())
    return copied * args.rows / seconds * 60, copied


def pipe(args: argparse.Namespace, source: str, target: str, when: str) -> float:
    rows_per_min, copied = pipe_rows_per_minute(args, source, target)
    print(
        f"peer ({when}): binary COPY pipe, {args.pipe_streams} at once, {args.pipe_seconds:g} s:"
        f" {copied} tables, {rows_per_min:,.0f} rows/min"
    )
    sys.stdout.flush()
    return rows_per_min


def _psql(url: str, command: str) -> list[str]:
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command]


# -- figures ----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its children's not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)}" + (f"  {values[0] * 1000:.0f} ms" if values else "")
    ms = sorted(v * 1000 for v in values)
    q = statistics.quantiles(ms, n=100)
    return (
        f"n={len(ms):>6}  p50 {q[49]:8.0f} ms  p90 {q[89]:8.0f} ms  p99 {q[98]:8.0f} ms"
        f"  max {ms[-1]:8.0f} ms"
    )


def report(soak: Soak, cpu: dict[str, float], elapsed: float) -> dict[str, Any]:
    args, ms = soak.args, list(soak.migrations.values())
    completed = [m for m in ms if m.status == "COMPLETED"]
    in_window = [m for m in completed if m.ended is not None and m.ended <= soak.window_end]
    wrong_rows = [m for m in completed if m.rows != args.rows]
    failed = [m for m in ms if m.status not in (None, "COMPLETED")]
    never = [m for m in ms if m.status is None]
    errors = len(failed) + len(never) + len(wrong_rows)
    window_min, run_min = args.duration / 60, elapsed / 60
    figures: dict[str, Any] = {
        "migrations_started": len(ms),
        "completed": len(completed),
        "completed_in_window": len(in_window),
        "migrations_per_min_window": len(in_window) / window_min,
        "rows_per_min_window": len(in_window) * args.rows / window_min,
        "migrations_per_min_run": len(completed) / run_min,
        "rows_per_min_run": len(completed) * args.rows / run_min,
        "answers": dict(soak.answers),
        "failed": Counter(m.status for m in failed),
        "never_ended": len(never),
        "wrong_rows": len(wrong_rows),
        "errors": errors,
        "error_rate": errors / len(ms) if ms else 0.0,
        "cpu_percent": cpu,
    }
    print(f"\nthroughput ({len(ms)} migrations started, {args.rows:,} rows each)")
    print(
        f"  in the {args.duration:g} s window: {len(in_window)} completed:"
        f" {figures['migrations_per_min_window']:,.1f} migrations/min,"
        f" {figures['rows_per_min_window']:,.0f} rows/min"
    )
    print(
        f"  whole run ({elapsed:.0f} s, drain included): {len(completed)} completed:"
        f" {figures['migrations_per_min_run']:,.1f} migrations/min,"
        f" {figures['rows_per_min_run']:,.0f} rows/min"
    )
    accepted = [m.answered - m.sent for m in ms if m.status_code == 200 and m.answered]
    whole = [m.ended - m.sent for m in completed if m.ended]
    print("latency")
    print(f"  command -> read model (POST ?wait=true, 200)  {percentiles(accepted)}")
    print(f"  command -> COMPLETED in the read model        {percentiles(whole)}")
    print("errors")
    print(f"  API answers: {dict(sorted(soak.answers.items()))}")
    print(
        f"  failed/cancelled/refused: {dict(figures['failed'])}, never ended: {len(never)},"
        f" target rows wrong: {len(wrong_rows)}"
    )
    for m in (failed + never + wrong_rows)[:10]:
        print(f"    {m.migration_id}: {m.status} {m.reason or ''} rows={m.rows}")
    bar = "met" if errors == 0 else ("under 0.5 %" if figures["error_rate"] < 0.005 else "MISSED")
    print(f"  error rate: {errors}/{len(ms)} = {figures['error_rate']:.3%} (goal 0: {bar})")
    if soak.stream_errors:
        print(f"  live stream reconnects: {len(soak.stream_errors)} ({soak.stream_errors[:3]})")
    print("CPU, % of one core over the run: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()))
    sys.stdout.flush()
    return figures


# -- the run ----------------------------------------------------------------------


def start_system(settings: Settings, logs: Path, source: str, target: str) -> Processes:
    connections = {"legacy": connection_for(source), "warehouse": connection_for(target)}
    procs = Processes(settings, logs)
    run = settings.kafka.app_id
    procs.start("worker", extra_env={"WORKER_ID": f"{run}-w0", "WORKER_METRICS_PORT": "0"})
    procs.start(
        "phase-0",
        "phase-worker",
        {**connections_env(connections), "PHASE_WORKER_ID": f"{run}-p0", "PHASE_METRICS_PORT": "0"},
    )
    procs.start("projector")
    procs.start("api", extra_env={"API_TOKENS": json.dumps({TOKEN: "operator"})})
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    url = f"http://127.0.0.1:{settings.api.port}"
    eventually(lambda: http("GET", f"{url}/ready")[0] == 200, 120)
    for group in (settings.kafka.app_id, names.phase_worker_group, names.projector_group):
        eventually(lambda g=group: group_is_stable(settings.kafka.bootstrap_servers, g), 180)
    return procs


def fill_sources(url: str, tables: int, rows: int) -> None:
    for i in range(tables):
        create_customers(url, rows, table=f"src_{i}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(b"VACUUM ANALYZE")


def cleanup(admin: str, databases: list[str], settings: Settings, warnings: list[str]) -> None:
    for name in databases:
        try:
            drop_database(admin, name)
        except Exception as exc:  # the figures are out already
            warnings.append(
                f'database {name} not dropped ({exc}): DROP DATABASE "{name}" WITH (FORCE)'
            )
    try:
        names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        admin_client = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
        ours = {t.name for t in names.topic_specs(settings.kafka.topic_partitions)}
        there = ours & set(admin_client.list_topics(timeout=30).topics)
        if not there:
            return
        for future in admin_client.delete_topics(sorted(there), operation_timeout=30).values():
            future.result()
    except Exception as exc:
        warnings.append(f"topics {settings.kafka.topic_prefix}* not all deleted: {exc}")


def options() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=int(env("SOAK_CONCURRENCY", "100")))
    parser.add_argument("--duration", type=float, default=float(env("SOAK_DURATION", "600")))
    parser.add_argument("--rows", type=int, default=int(env("SOAK_ROWS", "10000")))
    parser.add_argument("--tables", type=int, help="source tables (default: --concurrency)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--drain", type=float, default=300.0, help="s for the last ones to end")
    parser.add_argument("--pipe-seconds", type=float, default=30.0)
    parser.add_argument(
        "--pipe-streams", type=int, default=0, help="default: PHASE_CONCURRENCY (8)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    args.tables = args.tables or args.concurrency
    return args


def main() -> int:
    args = options()
    base = load_settings()
    run = uuid.uuid4().hex[:8]
    admin = base.database.url.get_secret_value()
    databases = {role: f"bench_soak_{role}_{run}" for role in ("rm", "src", "tgt")}
    urls = {role: make_conninfo(admin, dbname=name) for role, name in databases.items()}
    settings = base.replace(
        kafka={"topic_prefix": f"soak{run}.", "app_id": f"soak-{run}", "topic_partitions": 6},
        database={"url": SecretStr(urls["rm"])},
        api={"port": free_port()},
    )
    print(
        f"soak {run}: {args.concurrency} migrations at once for {args.duration:g} s,"
        f" {args.rows:,} rows each ({args.tables} source tables), load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    warnings: list[str] = []
    figures: dict[str, Any] = {"run": run, "options": vars(args)}
    made: list[str] = []
    procs: Processes | None = None
    code = 1
    try:
        for name in databases.values():
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"'.encode())
            made.append(name)
        began = time.perf_counter()
        fill_sources(urls["src"], args.tables, args.rows)
        print(f"sources: {args.tables} x {args.rows:,} rows in {time.perf_counter() - began:.1f} s")
        args.pipe_streams = args.pipe_streams or settings.phase.concurrency
        before = pipe(args, urls["src"], urls["tgt"], "before")
        create_topics(settings)
        procs = start_system(settings, logs, urls["src"], urls["tgt"])
        pids = {name: procs.running[name].pid for name in PROCESSES}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        soak = Soak(args, f"http://127.0.0.1:{settings.api.port}", urls["tgt"])
        began = time.perf_counter()
        asyncio.run(load(soak))
        elapsed = time.perf_counter() - began
        cpu = {n: (cpu_seconds(p) - cpu_before[n]) / elapsed * 100 for n, p in pids.items()}
        figures.update(report(soak, cpu, elapsed))
        codes = procs.stop_all()
        if set(codes.values()) != {0}:
            warnings.append(f"exit codes {codes}; logs in {logs}")
            args.keep_logs = True
        procs = None
        after = pipe(args, urls["src"], urls["tgt"], "after")
        figures["pipe_rows_per_min"] = {"before": before, "after": after}
        ratio = figures["rows_per_min_window"] / ((before + after) / 2)
        print(f"ratio: rows/min in the window / the pipe's (mean of both) = {ratio:.3f}")
        figures["ratio_to_pipe"] = ratio
        code = 0 if figures["errors"] == 0 else 2
    except Exception as exc:
        print(f"\nERROR: {type(exc).__name__}: {str(exc)[:3000]}")
        figures["error"] = repr(exc)
    finally:
        if procs is not None:
            codes = procs.stop_all()
            if set(codes.values()) != {0}:
                warnings.append(f"exit codes {codes}; logs in {logs}")
                args.keep_logs = True
        cleanup(admin, made, settings, warnings)
        for warning in warnings:
            print(f"warning: {warning}")
        figures["warnings"] = warnings
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
        if not args.keep_logs:
            for log in logs.glob("*.log"):
                log.unlink()
            logs.rmdir()
        else:
            print(f"logs: {logs}")
    return code


if __name__ == "__main__":
    sys.exit(main())

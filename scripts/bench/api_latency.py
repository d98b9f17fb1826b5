"""Benchmark: command -> read model latency through the HTTP API, at a steady rate.

    .local/venv/bin/python scripts/bench/api_latency.py                  # 20/s for 20 s
    .local/venv/bin/python scripts/bench/api_latency.py --rate 50 --duration 30

The orchestrator worker, the projector and the API run as processes (as in
production) on a fresh topic prefix and database of the local stack. The
benchmark sends `POST /api/v1/migrations?wait=true` at a fixed rate (open
loop: a request leaves on schedule whether or not earlier ones have
answered); each one's latency is the time until the API answers 200, i.e.
until the projected read model shows the command's effect (Kafka ->
orchestrator transaction -> read_committed projector -> PostgreSQL commit ->
NOTIFY -> the API). For scale, the same rate of `GET /health` is measured
in the same run (the HTTP round trip alone).

Prints p50/p90/p99/max; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support

from cli.topics import create_topics
from config import Settings
from tests.support.processes import Processes, eventually, group_is_stable, http
from tests.support.stack import free_port
from tests.support.system import SPEC
from tests.support.tables import fresh_database

TOKEN = "bench-operator-token-0123456789"


async def timed(session: aiohttp.ClientSession, method: str, url: str, body: object) -> float:
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.request(method, url, json=body, headers=headers) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {url}: {resp.status}")
    return time.perf_counter() - began


async def steady(rate: float, seconds: float, request: object) -> list[float]:
    """Start one request every 1/rate s for `seconds`; their latencies."""
    tasks: list[asyncio.Task[float]] = []
    began = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(request()))  # type: ignore[operator]
    return list(await asyncio.gather(*tasks))


def summary(name: str, latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    return (
        f"  {name:<34} n={len(ms):>5}  p50 {q[49]:7.1f} ms  p90 {q[89]:7.1f} ms"
        f"  p99 {q[98]:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


async def measure(url: str, rate: float, seconds: float) -> tuple[list[float], list[float]]:
    async with aiohttp.ClientSession() as session:
        create = f"{url}/api/v1/migrations?wait=true&timeout=60"
        await timed(session, "POST", create, {"spec": SPEC})  # warm-up
        commands = await steady(
            rate,
            seconds,
            lambda: timed(session, "POST", create, {"spec": SPEC, "migration_id": _mid()}),
        )
        health = await steady(
            rate, min(seconds, 10), lambda: timed(session, "GET", f"{url}/health", None)
        )
    return commands, health


def _mid() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="commands per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    parser.add_argument("--bootstrap", default="127.0.0.1:39092")
    parser.add_argument("--database", default="postgresql://migrator@127.0.0.1:35432/migrations")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    name = f"bench_api_{run}"
    with fresh_database(args.database, name) as dsn:
        commands, health = run_system(args, run, dsn)
    print(
        f"run {run}: {args.rate:g} commands/s for {args.duration:g} s,"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    print(summary("POST /migrations?wait=true (200)", commands))
    print(summary("GET /health (same rate)", health))


def run_system(args: argparse.Namespace, run: str, dsn: str) -> tuple[list[float], list[float]]:
    """Worker, projector and API as processes; the latencies measured through them."""
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
        procs.start("api", extra_env={"API_TOKENS": tokens, "API_RATE_PER_SECOND": "100000"})
        url = f"http://127.0.0.1:{settings.api.port}"
        eventually(lambda: http("GET", f"{url}/ready")[0] == 200)
        eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
        return asyncio.run(measure(url, args.rate, args.duration))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()

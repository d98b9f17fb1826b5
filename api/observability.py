"""The API's own health, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from api.auth import Handler, requires
from api.keys import NAMES, PROBE_POOL, PUBLISHER
from api.responses import ok
from projections import queries

READY_SECONDS = 2.0
REQUESTS = Counter(
    "migrator_api_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "migrator_api_request_seconds",
    "Time to answer an HTTP request (a WebSocket: its whole life)",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 60),
)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    began = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    REQUESTS.labels(request.method, route, str(response.status)).inc()
    LATENCY.labels(request.method, route).observe(time.perf_counter() - began)
    return response


@requires(None)
async def health(request: web.Request) -> web.StreamResponse:
    """The process is up and answering: always 200 (a liveness probe must not
    restart it while a dependency is away), "degraded" naming what is away."""
    checks = await _checks(request)
    up = all(v == "ok" for v in checks.values())
    return ok({"status": "ok" if up else "degraded", "checks": checks})


@requires(None)
async def ready(request: web.Request) -> web.StreamResponse:
    """Kafka and the read model are reachable: 200, else 503 naming what is not."""
    checks = await _checks(request)
    up = all(v == "ok" for v in checks.values())
    return ok({"status": "ready" if up else "not ready", "checks": checks}, 200 if up else 503)


async def _checks(request: web.Request) -> dict[str, str]:
    database, kafka = await asyncio.gather(_database(request), _kafka(request))
    return {"database": database, "kafka": kafka}


async def _database(request: web.Request) -> str:
    try:
        async with asyncio.timeout(READY_SECONDS):
            await queries.ping(request.app[PROBE_POOL])
    except Exception as exc:  # any failure means not ready; say which
        return f"unavailable: {type(exc).__name__}"
    return "ok"


async def _kafka(request: web.Request) -> str:
    topic = request.app[NAMES].commands
    try:
        await request.app[PUBLISHER].check(topic, READY_SECONDS)
    except Exception as exc:  # any failure means not ready; say which
        return f"unavailable: {type(exc).__name__}: {exc}"
    return "ok"


@requires(None)
async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

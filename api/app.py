"""Build the aiohttp application: routes, middleware, and owned resources.

The API reads the read model as a read-only database role (`migrator_api`
unless API_DATABASE_URL says otherwise) and writes only to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from api import (
    commands,
    dashboard,
    dead_letters,
    diffs,
    lag,
    live,
    observability,
    openapi,
    queries,
    replication_slots,
)
from api.admission import CommandSlots, LoopLag
from api.auth import Handler, load_tokens
from api.changes import ChangeHub
from api.effects import read_effects
from api.errors import errors_middleware
from api.executor import Offload
from api.guard import guard_middleware
from api.inbound import inbound_middleware
from api.keys import (
    COMMANDS,
    EFFECTS,
    HUB,
    LETTERS,
    LIMITER,
    LIVE,
    NAMES,
    OFFLOAD,
    POOL,
    PROBE_POOL,
    PUBLISHER,
    SETTINGS,
    TOKENS,
)
from api.publisher import Publisher
from api.ratelimit import RateLimiter
from api.shared_reads import SharedReads
from api.slots import LiveSlots
from api.timeouts import body_middleware
from api.traced import trace_middlewares
from config import KafkaNames, Settings
from ops.dead_letters.listing import ListingCache

log = logging.getLogger(__name__)
# A migration's routes; the bulk routes' names are not migration ids (api.models).
ONE = "/api/v1/migrations/{migration_id:(?!pause-all$|resume-all$)[^/]+}"
POOL_TIMEOUT = 10.0  # seconds a request waits for a read-model connection

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/health", observability.health),
    ("GET", "/ready", observability.ready),
    ("GET", "/metrics", observability.metrics),
    ("GET", "/api/v1/openapi.json", openapi.serve),
    ("GET", "/dashboard", dashboard.static("dashboard.html")),
    ("GET", "/dashboard/app.js", dashboard.static("dashboard.js")),
    ("GET", "/dashboard/app.css", dashboard.static("dashboard.css")),
    ("GET", "/api/v1/whoami", dashboard.whoami),
    ("GET", "/api/v1/migrations", queries.list_migrations),
    ("POST", "/api/v1/migrations", commands.create_migration),
    ("POST", "/api/v1/migrations/pause-all", commands.bulk("pause-all")),
    ("POST", "/api/v1/migrations/resume-all", commands.bulk("resume-all")),
    ("GET", ONE, queries.get_migration),
    ("GET", f"{ONE}/events", queries.list_events),
    ("GET", f"{ONE}/live", live.migration_socket),
    *(("POST", f"{ONE}/{kind}", commands.steer(kind)) for kind in commands.STEERING),
    ("GET", "/api/v1/changes", queries.list_changes),
    ("GET", "/api/v1/live", live.all_socket),
    *dead_letters.routes(),
    *lag.routes(),
    *replication_slots.routes(),
    ("GET", f"{ONE}/diff", diffs.get_diff),
    ("GET", "/dashboard/diff", dashboard.static("diff.html")),
    ("GET", "/dashboard/diff.js", dashboard.static("diff.js")),
)


def create_app(settings: Settings) -> web.Application:
    """The app; AuthConfigError when tokens are required and none are set."""
    app = web.Application(
        middlewares=[
            *trace_middlewares(),
            observability.metrics_middleware,
            errors_middleware,
            inbound_middleware,
            guard_middleware,
            body_middleware,
        ],
        client_max_size=settings.api.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[NAMES] = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    app[TOKENS] = load_tokens(settings)
    app[LIMITER] = RateLimiter(settings.api.rate_per_second, settings.api.rate_burst)
    app[LIVE] = LiveSlots(
        settings.api.live_max_clients,
        settings.api.live_per_client,
        settings.api.live_operator_reserve,
    )
    app[OFFLOAD] = Offload(settings.api.offload_workers, settings.api.client_concurrency)
    app[LETTERS] = ListingCache()
    lag = LoopLag()
    app[COMMANDS] = CommandSlots(
        settings.api.commands_in_flight, settings.api.commands_max_lag_seconds, lag
    )
    if not app[TOKENS].required:
        log.warning("API_AUTH=none: every client may query and send commands")
    app.cleanup_ctx.extend(
        [_pool, _hub, _publisher, replication_slots.gauges, partial(_watch, lag)]
    )
    app.on_cleanup.append(_close_offload)
    app.on_shutdown.append(_close_live)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app


def api_database_url(settings: Settings) -> str:
    """The API's login: API_DATABASE_URL, else DATABASE_URL as API_DATABASE_USER
    (without the owner's password)."""
    if settings.api.database_url is not None:
        return settings.api.database_url.get_secret_value()
    parts = conninfo_to_dict(settings.database.url.get_secret_value())
    parts.pop("password", None)
    return make_conninfo("", **{**parts, "user": settings.api.database_user})


async def _pool(app: web.Application) -> AsyncIterator[None]:
    """The read model's pool, and the probes' own connection: requests that
    hold every pooled one (a slow query, a flood) must not make /health and
    /ready wait, or say the database is away while it answers."""
    settings = app[SETTINGS]
    app[POOL] = pool = _read_pool(settings, settings.database.pool_max)
    app[PROBE_POOL] = probe = _read_pool(settings, 1)
    app[EFFECTS] = SharedReads(partial(read_effects, pool))
    await pool.open(wait=False)
    await probe.open(wait=False)
    yield
    await probe.close()
    await pool.close()


def _read_pool(settings: Settings, size: int) -> AsyncConnectionPool:
    """A connection is checked before it is handed out, so one that died with
    a database restart is replaced, not used; reconnection attempts last one
    pool timeout (their backoff stays short while the database is away), and
    the next request starts them again."""
    return AsyncConnectionPool(
        api_database_url(settings),
        min_size=1,
        max_size=size,
        open=False,
        timeout=POOL_TIMEOUT,
        reconnect_timeout=POOL_TIMEOUT,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True},
    )


async def _hub(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = ChangeHub(api_database_url(app[SETTINGS]))
    await app[HUB].start()
    yield
    await app[HUB].stop()


async def _watch(lag: LoopLag, app: web.Application) -> AsyncIterator[None]:
    """The event loop's lag is watched while the app runs (api.admission)."""
    task = asyncio.create_task(lag.watch(), name="loop-lag")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_live(app: web.Application) -> None:
    """Before the server waits for open requests: answer long polls, close sockets."""
    app[HUB].close()


async def _close_offload(app: web.Application) -> None:
    app[OFFLOAD].close()


async def _publisher(app: web.Application) -> AsyncIterator[None]:
    app[PUBLISHER] = Publisher(app[SETTINGS])
    yield
    await app[PUBLISHER].close()

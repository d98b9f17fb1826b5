"""Build the aiohttp application: routes, middleware, and owned resources."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from api import commands, queries
from api.errors import errors_middleware
from api.keys import NAMES, POOL, PUBLISHER, SETTINGS
from api.publisher import Publisher
from config import KafkaNames, Settings


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[errors_middleware], client_max_size=settings.api_max_body_bytes
    )
    app[SETTINGS] = settings
    app[NAMES] = KafkaNames(app_id=settings.app_id, prefix=settings.topic_prefix)
    app.cleanup_ctx.extend([_pool, _publisher])
    app.router.add_get("/health", queries.health)
    app.router.add_post("/api/v1/migrations", commands.create_migration)
    app.router.add_get("/api/v1/migrations/{migration_id}", queries.get_migration)
    app.router.add_get("/api/v1/migrations/{migration_id}/events", queries.list_events)
    return app


async def _pool(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = AsyncConnectionPool(
        settings.database_url.get_secret_value(),
        max_size=settings.database_pool_max,
        open=False,
        kwargs={"autocommit": True},
    )
    await pool.open()
    app[POOL] = pool
    yield
    await pool.close()


async def _publisher(app: web.Application) -> AsyncIterator[None]:
    app[PUBLISHER] = Publisher(app[SETTINGS])
    yield
    await app[PUBLISHER].close()

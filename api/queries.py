"""Query handlers over the read model: list, one migration, its events, the
change feed; `?since_version=` makes a read a long poll (the WebSocket's
fallback): it answers once something newer than that version is there, or
after `?timeout=` seconds with what there is."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from api import params
from api.auth import Role, requires
from api.guard import client_of, live_slot
from api.keys import HUB, OFFLOAD, POOL
from api.responses import ok, problem
from projections import queries

MAX_PAGE = 500
MAX_CHANGES = 500


@requires(Role.VIEWER)
async def list_migrations(request: web.Request) -> web.StreamResponse:
    statuses = params.statuses(request.query)
    limit = params.integer(request.query, "limit", 50, 1, MAX_PAGE)
    after = params.cursor(request.query)
    quarantined = params.flag(request.query, "quarantined")
    feed, rows = await queries.list_migrations(
        request.app[POOL], statuses, limit + 1, after, quarantined
    )
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    cursor = (
        params.encode_cursor(last["created_at"], last["migration_id"]) if more and last else None
    )
    return ok({"migrations": page, "next_cursor": cursor, "feed_version": feed})


@requires(Role.VIEWER)
async def get_migration(request: web.Request) -> web.StreamResponse:
    migration_id = request.match_info["migration_id"]
    since = params.since_version(request.query)
    timeout = params.seconds(request.query, default=params.POLL_SECONDS)
    pool, deadline = request.app[POOL], _deadline(timeout)
    slot = live_slot(request) if since is not None else contextlib.nullcontext()
    with slot, request.app[HUB].watch(migration_id) as watch:
        while True:
            row = await queries.get_migration(pool, migration_id)
            if row is None:
                return problem(404, f"no migration {migration_id!r}")
            if since is None or row["version"] > since:
                return ok(row)
            if not await watch.wait(deadline - _now()):
                return ok(row)


@requires(Role.VIEWER)
async def list_events(request: web.Request) -> web.StreamResponse:
    migration_id = request.match_info["migration_id"]
    after = params.integer(request.query, "after", 0, 0, params.MAX_VERSION)
    limit = params.integer(request.query, "limit", 1000, 1, 10_000)
    pool = request.app[POOL]
    async with request.app[OFFLOAD].limited(client_of(request)):
        if await queries.get_migration(pool, migration_id) is None:
            return problem(404, f"no migration {migration_id!r}")
        rows = await queries.list_events(pool, migration_id, after, limit)
    return ok({"migration_id": migration_id, "events": rows})


@requires(Role.VIEWER)
async def list_changes(request: web.Request) -> web.StreamResponse:
    """Migrations changed after feed version `since_version` (default: now),
    waiting up to `timeout` seconds for the first one."""
    since = params.since_version(request.query)
    timeout = params.seconds(request.query, default=params.POLL_SECONDS)
    limit = params.integer(request.query, "limit", MAX_CHANGES, 1, MAX_CHANGES)
    pool, deadline = request.app[POOL], _deadline(timeout)
    with live_slot(request), request.app[HUB].watch() as watch:
        if since is None:
            since = await queries.feed_version(pool)
        while True:
            rows = await queries.changes_since(pool, since, limit)
            if rows or not await watch.wait(deadline - _now()):
                return ok(changes(rows, since))


def changes(rows: list[dict[str, Any]], since: int) -> dict[str, Any]:
    version = max((r["feed_version"] for r in rows), default=since)
    return {"migrations": rows, "feed_version": version}


def _now() -> float:
    return asyncio.get_running_loop().time()


def _deadline(seconds: float) -> float:
    return _now() + seconds

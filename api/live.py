"""WebSockets that push each change, resumable from a version cursor.

- `/api/v1/migrations/{id}/live?since_version=N`: the migration's row and its
  events after version N (then after each change); a reconnect passes the
  last `version` it saw.
- `/api/v1/live?since_version=F`: every migration written after feed version
  F (default: now), as rows; a reconnect passes the last `feed_version`.

Messages are JSON: first `{"type": "hello", "since_version": N}`, then
`{"type": "migration", "migration": {...}, "events": [...]}`
and `{"type": "changes", "migrations": [...], "feed_version": F}`. Browsers
send their token as the subprotocol `bearer.<base64url(token)>` next to
`migrator.v1`. When WebSockets cannot connect, clients long-poll the same
cursors (`GET /api/v1/migrations/{id}?since_version=` and `/api/v1/changes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg
from aiohttp import WSMsgType, hdrs, web
from multidict import CIMultiDict

from api import params
from api.auth import WS_BEARER_PREFIX, WS_PROTOCOL, Role, requires
from api.changes import Watch
from api.guard import live_slot
from api.keys import HUB, POOL
from api.queries import MAX_CHANGES, changes
from api.responses import dumps, problem
from projections import queries

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 20.0
Push = Callable[[web.WebSocketResponse, int], Awaitable[int]]


@requires(Role.VIEWER)
async def migration_socket(request: web.Request) -> web.StreamResponse:
    migration_id = request.match_info["migration_id"]
    since = params.since_version(request.query) or 0
    pool = request.app[POOL]
    if await queries.get_migration(pool, migration_id) is None:
        return problem(404, f"no migration {migration_id!r}")

    async def push(ws: web.WebSocketResponse, version: int) -> int:
        row = await queries.get_migration(pool, migration_id)
        if row is None or row["version"] <= version:
            return version
        events = await queries.list_events(pool, migration_id, version)
        await ws.send_str(dumps({"type": "migration", "migration": row, "events": events}))
        return int(row["version"])

    return await _serve(request, migration_id, since, push)


@requires(Role.VIEWER)
async def all_socket(request: web.Request) -> web.StreamResponse:
    since = params.since_version(request.query)
    pool = request.app[POOL]
    if since is None:
        since = await queries.feed_version(pool)

    async def push(ws: web.WebSocketResponse, version: int) -> int:
        while True:
            rows = await queries.changes_since(pool, version, MAX_CHANGES)
            if not rows:
                return version
            message = {"type": "changes", **changes(rows, version)}
            await ws.send_str(dumps(message))
            version = int(message["feed_version"])

    return await _serve(request, None, since, push)


async def _serve(
    request: web.Request, migration_id: str | None, since: int, push: Push
) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(WS_PROTOCOL,), heartbeat=HEARTBEAT_SECONDS)
    request = _without_bearer(request)
    if not ws.can_prepare(request).ok:
        return problem(426, "this route speaks WebSocket only (Upgrade: websocket)")
    with live_slot(request), request.app[HUB].watch(migration_id) as watch:
        await ws.prepare(request)
        try:
            await ws.send_str(dumps({"type": "hello", "since_version": since}))
            await _converse(request, ws, watch, since, push)
        except ConnectionResetError:  # the client left: its socket is gone, nothing to answer
            log.debug("live client left %s", request.path)
    return ws


async def _converse(
    request: web.Request, ws: web.WebSocketResponse, watch: Watch, since: int, push: Push
) -> None:
    reader = asyncio.create_task(_read_until_closed(ws))
    try:
        await _pump(ws, watch, reader, request.app[HUB].closing, since, push)
        if request.app[HUB].closing.is_set():
            await ws.close(code=1001, message=b"server shutting down; reconnect")
    except psycopg.Error:
        await ws.close(code=1011, message=b"read model unavailable; reconnect")
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def _without_bearer(request: web.Request) -> web.Request:
    """The request as the handshake sees it: without the subprotocol carrying
    the token (read already), which aiohttp would log when none matches."""
    offered = request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL)
    if offered is None:
        return request
    kept = [p.strip() for p in offered.split(",") if not p.strip().startswith(WS_BEARER_PREFIX)]
    headers = CIMultiDict(request.headers)
    headers.popall(hdrs.SEC_WEBSOCKET_PROTOCOL)
    if kept:
        headers[hdrs.SEC_WEBSOCKET_PROTOCOL] = ", ".join(kept)
    return request.clone(headers=headers)


async def _pump(
    ws: web.WebSocketResponse,
    watch: Watch,
    reader: asyncio.Task[None],
    closing: asyncio.Event,
    since: int,
    push: Push,
) -> None:
    version = await push(ws, since)
    while not ws.closed and not reader.done() and not closing.is_set():
        woken = asyncio.create_task(watch.wait(HEARTBEAT_SECONDS))
        await asyncio.wait({woken, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not woken.done():
            woken.cancel()
            return
        if woken.result():
            version = await push(ws, version)


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    """Clients say nothing that matters; reading notices when they leave."""
    async for msg in ws:
        if msg.type == WSMsgType.ERROR:
            return

"""The migrations' replication slots: the route (viewer) and the gauges'
refresh (ops.slot_gauges) while the API runs with the databases' connections
(PHASE_CONNECTIONS or PHASE_CONNECTIONS_FILE; a login that may read
pg_replication_slots is enough).

    GET /api/v1/slots   {"slots": [{connection, slot, plugin, database, active,
                         retained_bytes, lag_bytes, wal_status, migration_id,
                         migration_status, left_behind}],
                         "unreachable": {connection: why}}

A slot's migration is found in the read model; `left_behind`: no live
migration owns it (unknown, COMPLETED or CANCELLED).

`routes()` is served by `api.app` and documented in `api.openapi`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from aiohttp import web

from api.auth import Handler, Role, requires
from api.keys import POOL, SETTINGS
from api.offload import answer
from ops import slot_gauges
from ops.slots import slot_report
from projections.queries import live_statuses

PATH = "/api/v1/slots"
log = logging.getLogger(__name__)


def routes() -> tuple[tuple[str, str, Handler], ...]:
    return (("GET", PATH, get_slots),)


@requires(Role.VIEWER)
async def get_slots(request: web.Request) -> web.Response:
    connections = request.app[SETTINGS].phase.connections
    statuses = await live_statuses(request.app[POOL])

    def work() -> dict[str, Any]:
        return asdict(slot_report(connections, statuses))

    return await answer(request, work)


async def gauges(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: refresh the slot gauges until the app stops."""
    settings = app[SETTINGS]
    task = None
    if settings.phase.connections:
        task = asyncio.create_task(_refresh_forever(app), name="slot-gauges")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _refresh_forever(app: web.Application) -> None:
    settings = app[SETTINGS]
    while True:
        try:
            await asyncio.to_thread(slot_gauges.refresh, settings.phase.connections)
        except Exception as exc:  # a refresh that fails is tried again, never the app's end
            log.warning("replication slot gauges not refreshed: %s", exc)
        await asyncio.sleep(settings.ops.metrics_interval_seconds)

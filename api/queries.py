"""Query handlers over the read model."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from api.errors import problem
from api.keys import POOL
from projections import queries


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


async def get_migration(request: web.Request) -> web.Response:
    migration_id = request.match_info["migration_id"]
    row = await queries.get_migration(request.app[POOL], migration_id)
    if row is None:
        return problem(404, f"no migration {migration_id!r}")
    return _json(row)


async def list_events(request: web.Request) -> web.Response:
    migration_id = request.match_info["migration_id"]
    rows = await queries.list_events(request.app[POOL], migration_id)
    if not rows:
        return problem(404, f"no migration {migration_id!r}")
    return _json({"migration_id": migration_id, "events": rows})


async def health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})

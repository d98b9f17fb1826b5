"""The lag route (viewer): consumer lag per group and topic, DLQ depth per
dead-letter topic, as `ops.lag` reports them.

    GET /api/v1/lag   {"consumer_lag": [{group, topic, lag}], "dlq_depth": [{topic, records}]}

`routes()` is served by `api.app` and documented in `api.openapi`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from api.auth import Handler, Role, requires
from api.keys import SETTINGS
from api.offload import answer
from ops.lag import lag_report

PATH = "/api/v1/lag"


def routes() -> tuple[tuple[str, str, Handler], ...]:
    return (("GET", PATH, get_lag),)


@requires(Role.VIEWER)
async def get_lag(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]

    def work() -> dict[str, Any]:
        return asdict(lag_report(settings))

    return await answer(request, work)

"""Operator calls block on Kafka: each runs in the app's bounded executor
(api.executor) as the requesting client's. Their errors are answered by the
one mapping (api.errors): no such topic or record 404, asked wrongly 422."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from api.guard import client_of
from api.keys import OFFLOAD


async def answer(request: web.Request, work: Callable[..., Any], *args: Any) -> web.Response:
    """`work(*args)` in the app's pool, as the requesting client's, as a JSON answer."""
    return web.json_response(await request.app[OFFLOAD].run(client_of(request), work, *args))

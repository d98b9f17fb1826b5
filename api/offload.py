"""Operator calls block on Kafka: each runs in the app's bounded executor
(api.executor) as the requesting client's, and its operator errors answer 404
(no such topic or record) or 422 (asked wrongly)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from api.guard import client_of
from api.keys import OFFLOAD
from api.responses import problem
from ops.errors import NoSuchRecord, NoSuchTopic, OperatorError


async def answer(request: web.Request, work: Callable[..., Any], *args: Any) -> web.Response:
    """`work(*args)` in the app's pool, as the requesting client's, as a JSON answer."""
    try:
        found = await request.app[OFFLOAD].run(client_of(request), work, *args)
    except (NoSuchTopic, NoSuchRecord) as exc:
        return problem(404, str(exc))
    except OperatorError as exc:
        return problem(422, str(exc))
    return web.json_response(found)

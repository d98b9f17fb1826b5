"""Operator calls block on Kafka: each runs in a worker thread, and its
operator errors answer 404 (no such topic or record) or 422 (asked wrongly)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from api.responses import problem
from ops.errors import NoSuchRecord, NoSuchTopic, OperatorError


async def answer(work: Callable[..., Any], *args: Any) -> web.Response:
    """`work(*args)` in a thread, as a JSON answer."""
    try:
        return web.json_response(await asyncio.to_thread(work, *args))
    except (NoSuchTopic, NoSuchRecord) as exc:
        return problem(404, str(exc))
    except OperatorError as exc:
        return problem(422, str(exc))

"""Slow clients are cut off rather than held: a connection still sending its
headers (or idle between requests) for `API_HEADER_SECONDS` is closed, and a
request body not received within `API_BODY_SECONDS` is answered 408 and its
connection closed. Live clients (WebSockets, long polls) are past both."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from aiohttp import web

from api.auth import Handler
from api.keys import SETTINGS
from api.responses import problem
from config import Settings


class ServerOptions(TypedDict):
    keepalive_timeout: float


def server_options(settings: Settings) -> ServerOptions:
    """What the server is started with (aiohttp closes a connection whose
    request has not arrived when its keep-alive time is up)."""
    return ServerOptions(keepalive_timeout=settings.api.header_seconds)


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the body within its bound; the handler then reads it from memory."""
    if request.body_exists and request.can_read_body:
        seconds = request.app[SETTINGS].api.body_seconds
        try:
            async with asyncio.timeout(seconds):
                await request.read()
        except TimeoutError:
            answer = problem(408, "request body too slow", f"not received within {seconds:g} s")
            answer.force_close()
            return answer
    return await handler(request)

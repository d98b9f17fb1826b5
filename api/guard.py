"""Who may do what, and how often: identify the client by its bearer token,
bound its rate, then check the role the route needs.

Open routes (`/health`, `/ready`, `/metrics`, the dashboard's files, the
OpenAPI document and `/whoami`) need no token; `/health`, `/ready` and `/metrics` are not
rate-limited either (probes and scrapers call them on a timer).
"""

from __future__ import annotations

import contextlib
import hashlib

from aiohttp import web

from api.auth import Handler, Role, presented_token, required_role
from api.keys import LIMITER, LIVE, TOKENS
from api.ratelimit import retry_after
from api.responses import problem

UNLIMITED = frozenset({"/health", "/ready", "/metrics"})
ROLE_KEY = web.RequestKey("role", Role)
CLIENT_KEY = web.RequestKey("client", str)


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[TOKENS]
    token = presented_token(request)
    role = tokens.role_of(token)
    client = request[CLIENT_KEY] = _client(token if role else None, request)
    if request.path not in UNLIMITED:
        wait = request.app[LIMITER].take(client)
        if wait:
            answer = problem(429, "too many requests", f"retry in {wait:.1f} s")
            answer.headers["Retry-After"] = retry_after(wait)
            return answer
    needed = required_role(request)
    if not tokens.required:
        role = Role.OPERATOR
    if needed is not None:
        if role is None:
            return unauthorized()
        if role < needed:
            return problem(403, f"this needs the {needed.name.lower()} role")
        request[ROLE_KEY] = role
    return await handler(request)


def unauthorized() -> web.Response:
    answer = problem(401, "a valid bearer token is required")
    answer.headers["WWW-Authenticate"] = 'Bearer realm="migrator"'
    return answer


def client_of(request: web.Request) -> str:
    """Who is asking, for fair shares: its valid token's digest, else its address."""
    return request.get(CLIENT_KEY) or _client(None, request)


def live_slot(request: web.Request) -> contextlib.AbstractContextManager[None]:
    """One of the live slots, as this client with its role (api.slots)."""
    return request.app[LIVE].hold(client_of(request), request.get(ROLE_KEY, Role.VIEWER))


def _client(token: str | None, request: web.Request) -> str:
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()
    return f"ip:{request.remote}"

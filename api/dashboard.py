"""The dashboard: one HTML page, its script and its style, served as files
(no build step, nothing from elsewhere), and `whoami` for the page to know
whether it needs a token and which buttons to show."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from api.auth import Handler, Role, presented_token, requires
from api.guard import unauthorized
from api.keys import TOKENS
from api.responses import ok

FILES = {
    "dashboard.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "diff.html": "text/html",
    "diff.js": "text/javascript",
}
# The page's own files only: no inline script, nothing from another origin.
POLICY = "default-src 'self'; connect-src 'self'; frame-ancestors 'none'"


def static(name: str) -> Handler:
    body = resources.files("api").joinpath("static", name).read_bytes()
    headers = {
        "Content-Type": f"{FILES[name]}; charset=utf-8",
        "Content-Security-Policy": POLICY,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }

    @requires(None)
    async def serve(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers=headers)

    serve.__name__ = name.replace(".", "_")
    return serve


@requires(None)
async def whoami(request: web.Request) -> web.StreamResponse:
    """Open, so that the page asks before it has a token (and gets no 401 for
    it): no token, role null (or operator when the API is open); a token that
    is not one of ours, 401."""
    tokens, token = request.app[TOKENS], presented_token(request)
    role = tokens.role_of(token) if tokens.required else Role.OPERATOR
    if role is None and token is not None:
        return unauthorized()
    return ok({"role": role.name.lower() if role else None})

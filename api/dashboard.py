"""The dashboard: one HTML page, its script and its style, served as files
(no build step, nothing from elsewhere), and `whoami` for the page to know
which buttons to show."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from api.auth import Handler, Role, requires
from api.guard import ROLE_KEY
from api.responses import ok

FILES = {
    "dashboard.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
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


@requires(Role.VIEWER)
async def whoami(request: web.Request) -> web.StreamResponse:
    return ok({"role": request[ROLE_KEY].name.lower()})

"""What a request must be before any handler reads it, as the OpenAPI document
declares it (api.openapi): headers that are UTF-8 text, only the query
parameters its operation declares, and an `Idempotency-Key` of the declared
length and characters. A request that is not is a 400 that says why."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from api.auth import Handler
from api.errors import BadRequest
from api.openapi import DOCUMENT, IDEMPOTENCY_KEY
from domain.text import refusal

Declared = Mapping[tuple[str, str], frozenset[str]]  # (METHOD, path) -> query names
_KEY = re.compile(IDEMPOTENCY_KEY["pattern"])


def declared_queries(document: Mapping[str, object]) -> Declared:
    """Each operation's query parameter names, from the document."""
    paths = document["paths"]
    assert isinstance(paths, Mapping)
    return {
        (method.upper(), path): frozenset(
            p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"
        )
        for path, operations in paths.items()
        for method, operation in operations.items()
    }


DECLARED = declared_queries(DOCUMENT)


@web.middleware
async def inbound_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    _check_headers(request)
    _check_query(request)
    _check_idempotency_key(request)
    return await handler(request)


def _check_headers(request: web.Request) -> None:
    for name, value in request.headers.items():
        why = refusal(name) or refusal(value)
        if why is not None:
            raise BadRequest(f"header {name!r} is not UTF-8 text: it {why}")


def _check_query(request: web.Request) -> None:
    resource = request.match_info.route.resource
    if resource is None:  # no route: the 404 or 405 says so
        return
    known = DECLARED.get((request.method, resource.canonical))
    if known is None:
        return
    unknown = sorted(set(request.query) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise BadRequest(f"unknown query parameter(s) {unknown}; this route takes: {allowed}")


def _check_idempotency_key(request: web.Request) -> None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY['maxLength']} visible ASCII"
            " characters (no spaces)"
        )

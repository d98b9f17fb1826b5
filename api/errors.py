"""Turn every failure into a JSON answer: 4xx that says why, never a bare 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: object = None) -> web.Response:
    body: dict[str, object] = {"status": status, "title": title}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status)


def validation_detail(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "error": e["msg"]}
        for e in exc.errors()
    ]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return problem(413, "request body too large")
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return problem(exc.status, exc.reason)
        raise
    except ValidationError as exc:
        return problem(422, "invalid request body", validation_detail(exc))
    except json.JSONDecodeError as exc:
        return problem(400, "malformed JSON", str(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal error")

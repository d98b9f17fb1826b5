"""The API's part of a trace: one server span per request, a child of the
caller's `traceparent` when it sent one; the answer names the trace in a
`traceresponse` header (W3C Trace Context level 2), so whoever submitted a
command can open its trace. Nothing is added when tracing is off."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.trace import SpanKind

from api.auth import Handler
from streams.kafka import tracing


def trace_middlewares() -> list[Middleware]:
    return [_traced] if tracing.enabled() else []


@web.middleware
async def _traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    headers = [(k.lower(), v.encode("latin-1")) for k, v in request.headers.items()]
    attributes: tracing.Attributes = {"http.request.method": request.method, "http.route": route}
    with tracing.consumed(f"api {request.method} {route}", headers, attributes, SpanKind.SERVER):
        response = await handler(request)
        tracing.note(**{"http.response.status_code": response.status})
        answer = tracing.trace_response()
        if answer is not None and not response.prepared:
            response.headers["traceresponse"] = answer
        return response

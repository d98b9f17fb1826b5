"""Turn every failure into a JSON answer: a 4xx that says why, a 503 when a
dependency is down, and a 500 only for a bug (logged). Our own errors answer
with the `status` their class carries (domain.errors); this is the one place
that maps them. The API's own errors are defined here too."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import psycopg
from aiohttp import web
from confluent_kafka import KafkaException
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from api.responses import problem
from domain.errors import ConfigurationError, MigratorError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = [
    "AuthConfigError",
    "BadRequest",
    "InvalidBody",
    "errors_middleware",
    "problem",
    "validation_detail",
]
GONE = 499  # the status counted for a client that hung up (nginx's): not a 5xx of ours
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


class AuthConfigError(ConfigurationError):
    """API tokens missing or malformed: the API refuses to start."""


class BadRequest(MigratorError):
    """A request the API refuses before it reads on: a malformed body, header or
    query parameter. The message says which, in the JSON body (never in the
    status line, which cannot carry every character)."""

    status = 400


class InvalidBody(MigratorError):
    """A body with a value no store can hold: `detail` names each field."""

    status = 422

    def __init__(self, detail: list[dict[str, str]]) -> None:
        super().__init__("invalid request body")
        self.detail = detail


def validation_detail(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "error": e["msg"]}
        for e in exc.errors()
    ]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        return problem(413, "request body too large", exc.text)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return _with_headers(problem(exc.status, exc.reason), exc)
        raise
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError too
        log.debug("client left before %s %s was answered", request.method, request.path)
        return web.Response(status=GONE)
    except InvalidBody as exc:
        return problem(exc.status, str(exc), exc.detail)
    except MigratorError as exc:
        return refusal(request, exc)
    except ValidationError as exc:
        return problem(422, "invalid request body", validation_detail(exc))
    except psycopg.DataError as exc:
        return problem(400, "a value the database cannot take", str(exc).splitlines()[0])
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable, PoolTimeout) as exc:
        log.warning("read model unavailable on %s %s: %s", request.method, request.path, exc)
        return problem(503, "read model unavailable", "try again shortly")
    except KafkaException as exc:
        log.warning("Kafka unavailable on %s %s: %s", request.method, request.path, exc)
        return problem(503, "command bus unavailable", "try again shortly")
    except BufferError:  # the producer's queue is full: the broker is not keeping up
        log.warning("Kafka producer queue full on %s %s", request.method, request.path)
        answer = problem(503, "command bus busy", "the producer's queue is full; try again shortly")
        answer.headers["Retry-After"] = "1"
        return answer
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal error")


def _with_headers(answer: web.Response, exc: web.HTTPException) -> web.Response:
    """The JSON answer keeps what the HTTP error says in headers (a 405's Allow)."""
    for name in KEPT_HEADERS:
        if name in exc.headers:
            answer.headers[name] = exc.headers[name]
    return answer


def refusal(request: web.Request, exc: MigratorError) -> web.Response:
    """Below 500 the message is for the client; above, it is ours to log."""
    if exc.status < 500:
        return problem(exc.status, str(exc))
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return problem(exc.status, "internal error", "try again shortly" if exc.retriable else None)

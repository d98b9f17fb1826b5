"""Operator routes for dead letters: list and show (viewer), redrive and purge
(operator).

    GET  /api/v1/dead-letters/{topic}                        list
    GET  /api/v1/dead-letters/{topic}/{partition}/{offset}   one, decoded
    POST /api/v1/dead-letters/{topic}/redrive   {"all" | "offsets", "dry_run", "limit", "rate"}
    POST /api/v1/dead-letters/{topic}/purge     {"all" | "before", "confirm": true}

`ROUTES` is served by `api.app` and documented in `api.openapi`. Each route
validates its body as the operator request, calls the use case of
`ops.dead_letters.service` and serialises what it returns. `{topic}` is a
dead-letter topic or the topic it belongs to.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import Handler, Role, requires
from api.bodies import read_json
from api.keys import LETTERS, SETTINGS
from api.offload import answer
from ops.dead_letters import service
from ops.dead_letters.requests import PurgeRequest, RedriveRequest

BASE = "/api/v1/dead-letters/{topic}"


def routes() -> tuple[tuple[str, str, Handler], ...]:
    return (
        ("GET", BASE, list_letters),
        ("GET", BASE + "/{partition:\\d+}/{offset:\\d+}", show_letter),
        ("POST", BASE + "/redrive", redrive_letters),
        ("POST", BASE + "/purge", purge_letters),
    )


@requires(Role.VIEWER)
async def list_letters(request: web.Request) -> web.Response:
    settings, topic = request.app[SETTINGS], request.match_info["topic"]
    letters = request.app[LETTERS]

    def work() -> dict[str, Any]:
        rows = letters.list(settings, topic)
        return {"topic": service.dead_letter_topic(settings, topic), "dead_letters": rows}

    return await answer(request, work)


@requires(Role.VIEWER)
async def show_letter(request: web.Request) -> web.Response:
    settings, topic = request.app[SETTINGS], request.match_info["topic"]
    partition, offset = int(request.match_info["partition"]), int(request.match_info["offset"])
    return await answer(request, service.show_dead_letter, settings, topic, partition, offset)


@requires(Role.OPERATOR)
async def redrive_letters(request: web.Request) -> web.Response:
    settings, topic = request.app[SETTINGS], request.match_info["topic"]
    body = RedriveRequest.model_validate(await read_json(request, {}))

    def work() -> dict[str, Any]:
        if body.dry_run:
            return service.preview_redrive(settings, topic, body).preview()
        result = service.redrive(settings, topic, body)
        return {**result.plan.preview(), "redriven": result.redriven}

    return await answer(request, work)


@requires(Role.OPERATOR)
async def purge_letters(request: web.Request) -> web.Response:
    settings, topic = request.app[SETTINGS], request.match_info["topic"]
    body = PurgeRequest.model_validate(await read_json(request, {}))

    def work() -> dict[str, Any]:
        outcome = service.purge_dead_letters(settings, topic, body)
        if not outcome.confirmed:
            return {
                **outcome.plan.preview(),
                "deleted": 0,
                "confirm": "send confirm: true to delete",
            }
        return {
            **outcome.plan.preview(),
            "deleted": outcome.deleted,
            "first_offsets": outcome.first_offsets,
        }

    return await answer(request, work)

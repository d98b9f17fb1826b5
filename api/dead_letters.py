"""Operator routes for dead letters: list and show (viewer), redrive and purge
(operator).

    GET  /api/v1/dead-letters/{topic}                        list
    GET  /api/v1/dead-letters/{topic}/{partition}/{offset}   one, decoded
    POST /api/v1/dead-letters/{topic}/redrive   {"all" | "offsets", "dry_run", "limit", "rate"}
    POST /api/v1/dead-letters/{topic}/purge     {"all" | "before", "confirm": true}

`ROUTES` is served by `api.app` and documented in `api.openapi`.

Kafka calls block, so each runs in a worker thread. `{topic}` is a
dead-letter topic or the topic it belongs to.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Handler, Role, requires
from api.errors import read_json
from api.keys import NAMES, SETTINGS
from ops.dead_letters import (
    OperatorError,
    Redrive,
    Selection,
    dlq_topic,
    parse_before,
    parse_positions,
    plan_purge,
    plan_redrive,
    purge,
    read_letter,
    read_letters,
)
from ops.dead_letters.ledger import redriven_positions
from ops.dead_letters.show import describe

BASE = "/api/v1/dead-letters/{topic}"


class RedriveBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    everything: bool = Field(default=False, alias="all")
    offsets: list[str] = Field(default_factory=list, max_length=10_000)
    dry_run: bool = False
    limit: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)


class PurgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    everything: bool = Field(default=False, alias="all")
    before: list[str] = Field(default_factory=list)
    confirm: bool = False


def routes() -> tuple[tuple[str, str, Handler], ...]:
    return (
        ("GET", BASE, list_letters),
        ("GET", BASE + "/{partition:\\d+}/{offset:\\d+}", show_letter),
        ("POST", BASE + "/redrive", redrive_letters),
        ("POST", BASE + "/purge", purge_letters),
    )


def _dlq(request: web.Request) -> str:
    return dlq_topic(request.app[NAMES], request.match_info["topic"])


async def _answer(work: Any, *args: Any) -> web.Response:
    """The work's plain data as JSON; its errors answer by their status (api.errors)."""
    return web.json_response(await asyncio.to_thread(work, *args))


@requires(Role.VIEWER)
async def list_letters(request: web.Request) -> web.Response:
    settings, dlq = request.app[SETTINGS], _dlq(request)

    def work() -> dict[str, Any]:
        done = redriven_positions(settings, dlq)
        rows = [
            {**r.summary(), "redriven": r.position in done} for r in read_letters(settings, dlq)
        ]
        return {"topic": dlq, "dead_letters": rows}

    return await _answer(work)


@requires(Role.VIEWER)
async def show_letter(request: web.Request) -> web.Response:
    settings, names, dlq = request.app[SETTINGS], request.app[NAMES], _dlq(request)
    partition, offset = int(request.match_info["partition"]), int(request.match_info["offset"])
    return await _answer(lambda: describe(read_letter(settings, dlq, partition, offset), names))


@requires(Role.OPERATOR)
async def redrive_letters(request: web.Request) -> web.Response:
    settings, dlq = request.app[SETTINGS], _dlq(request)
    body = RedriveBody.model_validate(await read_json(request, {}))
    most = body.max_attempts or settings.dlq_max_attempts

    def work() -> dict[str, Any]:
        selection = Selection(body.everything, parse_positions(body.offsets), body.limit)
        if body.dry_run:
            return plan_redrive(settings, dlq, selection, most).preview()
        result = Redrive(settings, dlq, rate=body.rate).run(selection, most)
        return {**result.plan.preview(), "redriven": result.redriven}

    return await _answer(work)


@requires(Role.OPERATOR)
async def purge_letters(request: web.Request) -> web.Response:
    settings, dlq = request.app[SETTINGS], _dlq(request)
    body = PurgeBody.model_validate(await read_json(request, {}))

    def work() -> dict[str, Any]:
        if body.everything == bool(body.before):
            raise OperatorError("choose either every record (all) or before: [partition:offset]")
        plan = plan_purge(
            dlq, read_letters(settings, dlq), None if body.everything else parse_before(body.before)
        )
        if not body.confirm:
            return {**plan.preview(), "deleted": 0, "confirm": "send confirm: true to delete"}
        return {**plan.preview(), "deleted": plan.records, "first_offsets": purge(settings, plan)}

    return await _answer(work)

"""Command handlers: validate, publish to `migration.commands`, answer 202.

With `?wait=true` the answer waits (up to `?timeout=` seconds) until the read
model shows the command's effect: 200 when it took effect, 409 when it was
rejected (with the reason), still 202 (`"outcome": "pending"`) when it is not
visible in time: the command is on its way, not lost, so no 5xx.

At most API_COMMANDS_IN_FLIGHT commands are published or awaited at once;
past that a command is answered 503 at once, unpublished (api.admission).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from api import params
from api.auth import Handler, Role, requires
from api.bodies import read_json
from api.effects import Effect, wait_for_effect
from api.keys import COMMANDS, EFFECTS, HUB, NAMES, POOL, PUBLISHER
from api.models import CreateMigrationIn, CutoverIn, EmptyIn, ReasonIn
from api.publisher import Position
from api.responses import ok, problem
from domain import (
    AbortCutover,
    CancelMigration,
    Command,
    CutoverMigration,
    DiffMigration,
    PauseMigration,
    RepairMigration,
    ResumeMigration,
    RetryMigration,
    StartMigration,
    Status,
)
from projections.queries import get_migration, ids_in_status
from schemas import encode
from streams.kafka.tracing import within

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c9a52-34d4-4c4b-9d55-0e8f2f0c3a11")
STEERING: dict[str, tuple[type[Command], type[BaseModel]]] = {
    "pause": (PauseMigration, ReasonIn),
    "resume": (ResumeMigration, EmptyIn),
    "cancel": (CancelMigration, ReasonIn),
    "retry": (RetryMigration, EmptyIn),
    "cutover": (CutoverMigration, CutoverIn),
    "abort-cutover": (AbortCutover, ReasonIn),
    "diff": (DiffMigration, EmptyIn),
    "repair": (RepairMigration, EmptyIn),
}
BULK: dict[str, tuple[str, tuple[Status, ...]]] = {
    "pause-all": ("pause", (Status.RUNNING,)),
    "resume-all": ("resume", (Status.PAUSED,)),
}


def ids_for(idempotency_key: str | None) -> tuple[str, str]:
    """(migration_id, command_id): fixed by an Idempotency-Key, fresh otherwise."""
    if idempotency_key:
        base = uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)
        return f"m-{base}", f"c-{base}"
    return f"m-{uuid.uuid4()}", f"c-{uuid.uuid4()}"


def command_id_for(idempotency_key: str | None, kind: str, migration_id: str) -> str:
    """A steering command's id: fixed by an Idempotency-Key (per migration), fresh otherwise."""
    if idempotency_key:
        return f"c-{uuid.uuid5(IDEMPOTENCY_NAMESPACE, f'{idempotency_key}/{kind}/{migration_id}')}"
    return f"c-{uuid.uuid4()}"


@requires(Role.OPERATOR)
async def create_migration(request: web.Request) -> web.StreamResponse:
    with request.app[COMMANDS].hold():
        return await _create(request)


async def _create(request: web.Request) -> web.StreamResponse:
    body = CreateMigrationIn.model_validate(await read_json(request))
    wait, seconds = params.wait(request.query), params.seconds(request.query)
    migration_id, command_id = ids_for(request.headers.get("Idempotency-Key"))
    command = StartMigration(
        command_id=command_id,
        migration_id=body.migration_id or migration_id,
        spec=body.spec.to_domain(),
    )
    position = await _publish(request, command)
    return await _answer(request, command, position, wait, seconds)


def steer(kind: str) -> Handler:
    """The handler of POST /api/v1/migrations/{migration_id}/<kind>."""
    command_type, body_model = STEERING[kind]

    @requires(Role.OPERATOR)
    async def handle(request: web.Request) -> web.StreamResponse:
        with request.app[COMMANDS].hold():
            return await _steer(request)

    async def _steer(request: web.Request) -> web.StreamResponse:
        fields = body_model.model_validate(await read_json(request, empty={})).model_dump()
        wait, seconds = params.wait(request.query), params.seconds(request.query)
        migration_id = request.match_info["migration_id"]
        if await get_migration(request.app[POOL], migration_id) is None:
            return problem(404, f"no migration {migration_id!r}")
        key = request.headers.get("Idempotency-Key")
        command_id = command_id_for(key, kind, migration_id)
        command = command_type(command_id=command_id, migration_id=migration_id, **fields)
        position = await _publish(request, command)
        return await _answer(request, command, position, wait, seconds)

    handle.__name__ = f"{kind}_migration"
    return handle


def bulk(name: str) -> Handler:
    """The handler of POST /api/v1/migrations/pause-all and resume-all: one
    command per migration the read model shows in the matching status."""
    kind, statuses = BULK[name]
    command_type, body_model = STEERING[kind]

    @requires(Role.OPERATOR)
    async def handle(request: web.Request) -> web.StreamResponse:
        with request.app[COMMANDS].hold():
            return await _bulk(request)

    async def _bulk(request: web.Request) -> web.StreamResponse:
        fields = body_model.model_validate(await read_json(request, empty={})).model_dump()
        wait, seconds = params.wait(request.query), params.seconds(request.query)
        key = request.headers.get("Idempotency-Key")
        ids = await ids_in_status(request.app[POOL], [s.value for s in statuses])
        commands = [
            command_type(command_id=command_id_for(key, kind, m), migration_id=m, **fields)
            for m in ids
        ]
        await asyncio.gather(*(_publish(request, c) for c in commands))
        listed = [{"migration_id": c.migration_id, "command_id": c.command_id} for c in commands]
        answer: dict[str, Any] = {"count": len(commands), "commands": listed}
        if not wait:
            return ok(answer, status=202)
        return await _answer_all(request, commands, answer, seconds)

    handle.__name__ = name.replace("-", "_")
    return handle


async def _publish(request: web.Request, command: Command) -> Position:
    value, headers = encode(command)
    topic = request.app[NAMES].commands
    return await request.app[PUBLISHER].publish(
        topic, command.migration_id.encode(), value, headers
    )


async def _answer(
    request: web.Request, command: Command, position: Position, wait: bool, seconds: float
) -> web.StreamResponse:
    answer: dict[str, Any] = {
        "migration_id": command.migration_id,
        "command_id": command.command_id,
        "position": {"partition": position.partition, "offset": position.offset},
    }
    headers = {"Location": f"/api/v1/migrations/{command.migration_id}"}
    if not wait:
        return ok(answer, status=202, headers=headers)
    effect = await within("api wait for the read model", _effect(request, command, seconds))
    if effect is None:
        return ok({**answer, "outcome": "pending"}, status=202, headers=headers)
    if effect.rejected:
        return problem(409, "command rejected", effect.reason, outcome="rejected", **answer)
    answer.update(outcome="accepted", version=effect.version, migration=effect.migration)
    return ok(answer, headers=headers)


async def _answer_all(
    request: web.Request, commands: Sequence[Command], answer: dict[str, Any], seconds: float
) -> web.StreamResponse:
    effects = await asyncio.gather(*(_effect(request, c, seconds) for c in commands))
    for listed, effect in zip(answer["commands"], effects, strict=True):
        listed["outcome"] = _outcome(effect)
    outcomes = [c["outcome"] for c in answer["commands"]]
    answer.update({o: outcomes.count(o) for o in ("accepted", "rejected", "pending")})
    return ok(answer, status=202 if answer["pending"] else 200)


def _outcome(effect: Effect | None) -> str:
    if effect is None:
        return "pending"
    return "rejected" if effect.rejected else "accepted"


async def _effect(request: web.Request, command: Command, seconds: float) -> Effect | None:
    deadline = asyncio.get_running_loop().time() + seconds
    app = request.app
    return await wait_for_effect(
        app[HUB], app[EFFECTS], command.migration_id, command.command_id, deadline
    )

"""Command handlers: validate, publish to `migration.commands`, answer 202."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from api.errors import problem
from api.keys import NAMES, POOL, PUBLISHER
from api.models import CreateMigrationIn
from projections.queries import get_migration
from schemas import encode
from streams.domain import StartMigration

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c9a52-34d4-4c4b-9d55-0e8f2f0c3a11")
WAIT_SECONDS = 10.0
MAX_WAIT_SECONDS = 60.0


def ids_for(idempotency_key: str | None) -> tuple[str, str]:
    """(migration_id, command_id): fixed by an Idempotency-Key, fresh otherwise."""
    if idempotency_key:
        base = uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)
        return f"m-{base}", f"c-{base}"
    return f"m-{uuid.uuid4()}", f"c-{uuid.uuid4()}"


async def create_migration(request: web.Request) -> web.Response:
    body = CreateMigrationIn.model_validate(await request.json())
    wait = request.query.get("wait") == "true"
    seconds = wait_seconds(request.query.get("timeout"))
    migration_id, command_id = ids_for(request.headers.get("Idempotency-Key"))
    command = StartMigration(command_id, body.migration_id or migration_id, body.spec.to_domain())
    value, headers = encode(command)
    key = command.migration_id.encode()
    position = await request.app[PUBLISHER].publish(
        request.app[NAMES].commands, key, value, headers
    )
    answer = {
        "migration_id": command.migration_id,
        "command_id": command_id,
        "position": {"partition": position.partition, "offset": position.offset},
    }
    if wait and not await _wait_visible(request, command, seconds):
        return problem(504, "command accepted but not yet visible in the read model", answer)
    location = f"/api/v1/migrations/{command.migration_id}"
    return web.json_response(answer, status=202, headers={"Location": location})


def wait_seconds(raw: str | None) -> float:
    """`?timeout=` in seconds, within (0, MAX_WAIT_SECONDS]; a bad value is a 400."""
    if raw is None:
        return WAIT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_WAIT_SECONDS:
        raise web.HTTPBadRequest(
            reason=f"timeout must be a number of seconds in (0, {MAX_WAIT_SECONDS:g}]"
        )
    return seconds


async def _wait_visible(request: web.Request, command: StartMigration, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await get_migration(request.app[POOL], command.migration_id):
            return True
        await asyncio.sleep(0.05)
    return False

"""The orchestrator agent: commands in, domain events out, state in a table."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from schemas import RecordError, decode_command, encode
from schemas.state import state_from_plain, state_to_plain
from streams.app import app
from streams.dead_letters import Origin, dead_letter_headers
from streams.domain import MigrationState, decide, evolve
from streams.domain.commands import Command
from streams.topics import commands_dlq_topic, commands_topic, events_topic, state_table

log = logging.getLogger(__name__)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@app.agent(commands_topic)
async def orchestrate(stream: Any) -> AsyncIterator[None]:
    async for event in stream.events():
        await handle(event.message)
        yield None


async def handle(message: Any) -> None:
    try:
        command = decode_command(message.value, message.headers)
    except RecordError as exc:
        await dead_letter(message, exc)
        return
    key = command.migration_id.encode()
    if message.key != key:
        # A command keyed otherwise (or not at all) sits on the wrong partition
        # for this migration: re-key it, so it is handled in order with the rest.
        log.info("re-keying command %s to %s", command.command_id, command.migration_id)
        await commands_topic.send(key=key, value=message.value, headers=message.headers)
        return
    await apply(command, key)


async def apply(command: Command, key: bytes) -> None:
    plain = state_table.get(key)
    state = state_from_plain(plain) if plain else MigrationState(command.migration_id)
    for event in decide(state, command, now()):
        value, headers = encode(event)
        await events_topic.send(key=key, value=value, headers=headers)
        state = evolve(state, event)
    state_table[key] = state_to_plain(state)


async def dead_letter(message: Any, error: Exception) -> None:
    origin = Origin(message.topic, message.partition, message.offset)
    log.warning("dead-lettering %s/%s@%s: %s", *vars(origin).values(), error)
    headers = list(message.headers or ()) + dead_letter_headers(origin, error, now())
    await commands_dlq_topic.send(key=message.key, value=message.value, headers=headers)

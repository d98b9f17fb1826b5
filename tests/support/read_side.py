"""The read side for tests: domain event histories, tokens, and the API
served in-process on a real port against the real broker and database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import psycopg
from aiohttp import web
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from api.app import create_app
from api.publisher import Publisher
from api.timeouts import server_options
from cli.topics import create_topics
from config import KafkaNames, Settings
from domain import (
    Event,
    Input,
    MigrationSpec,
    MigrationState,
    StartMigration,
    decide,
    evolve,
    task_for,
)
from projections.schema import apply_schema
from schemas import encode
from tests.support.phase_simulator import answer
from tests.support.stack import Stack, drop_database, free_port

OPERATOR = "operator-token-0123456789abcdef"
VIEWER = "viewer-token-0123456789abcdef"
TOKENS = {OPERATOR: "operator", VIEWER: "viewer"}
SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)
AT = "2026-01-01T00:00:00.000+00:00"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_tokens(settings: Settings, **extra: Any) -> Settings:
    return settings.replace(api={"tokens": SecretStr(json.dumps(TOKENS))}, **extra)


@contextmanager
def fresh_settings(stack: Stack) -> Iterator[Settings]:
    """Settings with their own topics (created), app id, database and API port,
    and the test tokens: for a module that shares one running system."""
    unique = uuid.uuid4().hex[:10]
    name = f"t_{unique}"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    settings = with_tokens(
        Settings(
            kafka={
                "bootstrap_servers": stack.kafka_bootstrap,
                "topic_prefix": f"t{unique}.",
                "app_id": f"app-{unique}",
                "topic_partitions": 3,
            },
            database={"url": make_conninfo(stack.database_url, dbname=name)},
            api={"port": free_port()},
        )
    )
    create_topics(settings)
    try:
        yield settings
    finally:
        drop_database(stack.database_url, name)


def lifecycle(migration_id: str, spec: MigrationSpec = SPEC, at: str = AT) -> list[Event]:
    """A migration's whole event history as the orchestrator and the simulated
    phase worker make it: started, five phases, completed (or failed)."""
    state, out = MigrationState(migration_id=migration_id), []
    inputs: list[Input] = [
        StartMigration(command_id=f"c-{migration_id}", migration_id=migration_id, spec=spec)
    ]
    while inputs:
        for event in decide(state, inputs.pop(0), at):
            state = evolve(state, event)
            out.append(event)
            task = task_for(state, event)
            if task is not None:
                inputs.extend(answer(task))
    return out


async def publish(settings: Settings, names: KafkaNames, events: Sequence[Event]) -> None:
    pub = Publisher(settings)
    try:
        for event in events:
            value, headers = encode(event)
            await pub.publish(names.events, event.migration_id.encode(), value, headers)
    finally:
        await pub.close()


async def prepare_schema(settings: Settings) -> None:
    """The read model's schema and roles, applied as the owner (as the projector does)."""
    dsn = settings.database.url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await apply_schema(conn)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The API app on 127.0.0.1:<settings.api.port>; yields its base URL."""
    runner = web.AppRunner(create_app(settings), **server_options(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.api.port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{settings.api.port}"
    finally:
        await runner.cleanup()


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None = OPERATOR,
    body: object = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    data = kwargs.pop("data", None)
    if body is not None:
        data = json.dumps(body)
    async with session.request(method, url, headers=headers, data=data, **kwargs) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return resp.status, text

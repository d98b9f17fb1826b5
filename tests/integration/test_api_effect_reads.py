"""The effects of many waiting commands are read at once (api.effects), from
a read model the real projector wrote: each command's events in order, its
migration's row when it took effect, none for a rejection's row, and nothing
for a command not yet projected."""

from __future__ import annotations

import asyncio

import pytest
from psycopg_pool import AsyncConnectionPool

from api.app import api_database_url
from api.effects import read_effects
from config import KafkaNames, Settings
from domain import MigrationState, ResumeMigration, decide, evolve
from tests.support.event_log import projecting, until, write_log
from tests.support.read_side import AT, lifecycle, prepare_schema

pytestmark = pytest.mark.integration


async def test_one_read_gives_every_projected_command_its_effect(
    settings: Settings, topics: KafkaNames
) -> None:
    done, started = lifecycle("m-done"), lifecycle("m-started")[:2]
    state = MigrationState(migration_id="m-started")
    for event in started:
        state = evolve(state, event)
    rejected = list(decide(state, ResumeMigration(command_id="c-no", migration_id="m-started"), AT))
    await prepare_schema(settings)
    await asyncio.to_thread(write_log, settings, topics, [*done, *started, *rejected])
    async with projecting(settings) as projector:
        await until(settings, "SELECT count(*) FROM migration_events", 1 + len(done) + 2, projector)

    async with AsyncConnectionPool(api_database_url(settings), open=False) as pool:
        effects = await read_effects(
            pool,
            [
                ("m-done", "c-m-done"),
                ("m-started", "c-no"),
                ("m-started", "c-later"),
                ("m-done", "c-no"),
            ],
        )

    assert set(effects) == {("m-done", "c-m-done"), ("m-started", "c-no")}
    took = effects["m-done", "c-m-done"]
    caused = [e for e in done if e.causation_id == "c-m-done"]
    assert [e["sequence"] for e in took.events] == [e.sequence for e in caused]
    assert not took.rejected and took.migration is not None
    assert (took.migration["migration_id"], took.migration["status"]) == ("m-done", "COMPLETED")
    refused = effects["m-started", "c-no"]
    assert refused.rejected and "RUNNING" in refused.reason and refused.migration is None

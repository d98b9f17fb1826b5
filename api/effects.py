"""Read-your-writes: wait until the read model shows what a command did.

A command's effect is the events it caused (`causation_id` = its command id):
what it changed, or its `CommandRejected`. A command seen before has the
effect of its first copy. The wait sleeps on the projector's NOTIFY, never
polls on a timer. Its reads are shared with the other commands waiting at
the same time (api.shared_reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from api.changes import ChangeHub
from api.shared_reads import SharedReads
from projections.queries import Row, command_effects, get_migrations

Key = tuple[str, str]  # (migration_id, command_id)


@dataclass(frozen=True)
class Effect:
    events: list[dict[str, Any]]
    migration: Row | None = None  # as read with the events, when the command took effect

    @property
    def rejected(self) -> bool:
        return bool(self.events[0]["type"] == "CommandRejected")

    @property
    def reason(self) -> str:
        return str(self.events[0]["payload"].get("reason", ""))

    @property
    def version(self) -> int:
        return int(self.events[-1]["sequence"])


EffectReads = SharedReads[Key, Effect]


async def read_effects(pool: AsyncConnectionPool, keys: Sequence[Key]) -> dict[Key, Effect]:
    """The effects of the commands `keys` that are projected, each with its
    migration's row when it took effect: one read for every waiting command."""
    found = await command_effects(pool, keys)
    took = [m for (m, _), events in found.items() if events[0]["type"] != "CommandRejected"]
    rows = await get_migrations(pool, took) if took else {}
    return {key: Effect(events, rows.get(key[0])) for key, events in found.items()}


async def wait_for_effect(
    hub: ChangeHub,
    effects: EffectReads,
    migration_id: str,
    command_id: str,
    deadline: float,
) -> Effect | None:
    """The command's effect once projected; None if not by `deadline` (loop time)."""
    loop = asyncio.get_running_loop()
    with hub.watch(migration_id) as watch:
        while True:
            effect = await effects.get((migration_id, command_id))
            if effect is not None:
                return effect
            if not await watch.wait(deadline - loop.time()):
                return None

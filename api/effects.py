"""Read-your-writes: wait until the read model shows what a command did.

A command's effect is the events it caused (`causation_id` = its command id):
what it changed, or its `CommandRejected`. A command seen before has the
effect of its first copy. The wait sleeps on the projector's NOTIFY, never
polls on a timer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from api.changes import ChangeHub
from projections.queries import command_effect


@dataclass(frozen=True)
class Effect:
    events: list[dict[str, Any]]

    @property
    def rejected(self) -> bool:
        return bool(self.events[0]["type"] == "CommandRejected")

    @property
    def reason(self) -> str:
        return str(self.events[0]["payload"].get("reason", ""))

    @property
    def version(self) -> int:
        return int(self.events[-1]["sequence"])


async def wait_for_effect(
    hub: ChangeHub,
    pool: AsyncConnectionPool,
    migration_id: str,
    command_id: str,
    deadline: float,
) -> Effect | None:
    """The command's effect once projected; None if not by `deadline` (loop time)."""
    loop = asyncio.get_running_loop()
    with hub.watch(migration_id) as watch:
        while True:
            events = await command_effect(pool, migration_id, command_id)
            if events:
                return Effect(events)
            if not await watch.wait(deadline - loop.time()):
                return None

"""Read-your-writes: wait until the read model shows what a command did.

A command's effect is the events it caused (`causation_id` = its command id):
what it changed, or its `CommandRejected`. A command seen before has the
effect of its first copy. The wait sleeps on the projector's NOTIFY, never
polls on a timer. Its reads are shared with the other commands waiting at
the same time (api.shared_reads).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from api.changes import ChangeHub
from api.shared_reads import SharedReads
from projections.queries import Row

EffectReads = SharedReads[tuple[str, str], list[Row]]


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
    effects: EffectReads,
    migration_id: str,
    command_id: str,
    deadline: float,
) -> Effect | None:
    """The command's effect once projected; None if not by `deadline` (loop time)."""
    loop = asyncio.get_running_loop()
    with hub.watch(migration_id) as watch:
        while True:
            events = await effects.get((migration_id, command_id))
            if events:
                return Effect(events)
            if not await watch.wait(deadline - loop.time()):
                return None

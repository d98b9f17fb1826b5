"""What a cancelled migration with change capture leaves on its source: its
replication slot (dropped: a slot left behind keeps WAL forever) and a write
freeze (removed)."""

from __future__ import annotations

import logging

from domain import MigrationSpec
from streams.dataplane.cdc import freeze, slots
from streams.dataplane.database import Database

log = logging.getLogger(__name__)


async def cleanup(source: Database, migration_id: str, spec: MigrationSpec) -> None:
    slot = slots.slot_name(migration_id)
    if await source.autocommit(lambda c: slots.drop(c, slot)):
        log.info("%s: replication slot %s dropped", migration_id, slot)
    if await source.autocommit(lambda c: freeze.unfreeze(c, spec.source_table)):
        log.info("%s: %s unfrozen", migration_id, spec.source_table)

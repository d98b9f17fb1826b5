"""Replication slots as an operator reads them: every slot a migration made on
a configured database (its name starts with `migrator_`), with the WAL it
keeps there. A slot outlives its migration only by mistake, and keeps WAL
until the disk is full, so it must be impossible to miss: `migrator slots`
lists them, the orchestrator worker exports `migrator_cdc_slot_retained_bytes`
(ops.slot_gauges) and an alert fires on a large one.

Retained bytes: the source's current WAL position minus the slot's restart
position (what the server may not recycle). Lag bytes: minus its confirmed
position (what the migration has not applied yet). pg_replication_slots is
readable by every role; a database that cannot be reached is reported with
its error, not skipped. Given the migrations' statuses, each slot names its
migration (domain.live.slot_name) and says whether it is left behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import psycopg

from config.connections import Connection
from domain.live import left_behind, slot_name

PREFIX = "migrator_"
CONNECT_TIMEOUT_SECONDS = 5
QUERY = """
SELECT slot_name, plugin, database, active,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint,
       wal_status
FROM pg_replication_slots
WHERE starts_with(slot_name, %s)
ORDER BY slot_name
"""


@dataclass(frozen=True)
class Slot:
    connection: str  # the configured name of the database server it is on
    slot: str
    plugin: str | None
    database: str | None
    active: bool  # a session reads it now
    retained_bytes: int
    lag_bytes: int
    wal_status: str | None
    migration_id: str | None = None  # whose it is, when known
    migration_status: str | None = None
    left_behind: bool = False  # no live migration will read it again


@dataclass(frozen=True)
class SlotReport:
    slots: tuple[Slot, ...]
    unreachable: Mapping[str, str]  # connection -> why it could not be read


def slot_report(
    connections: Mapping[str, Connection], statuses: Mapping[str, str] | None = None
) -> SlotReport:
    """The migrations' slots on each of `connections`, now; with `statuses`
    (migration id -> status of every migration with `cdc`), whose each is."""
    found: list[Slot] = []
    unreachable: dict[str, str] = {}
    for name, connection in sorted(connections.items()):
        try:
            found += slots_on(name, connection)
        except psycopg.Error as exc:
            unreachable[name] = _first_line(exc)
    if statuses is not None:
        found = _owned(found, statuses)
    return SlotReport(tuple(found), unreachable)


def _owned(slots: list[Slot], statuses: Mapping[str, str]) -> list[Slot]:
    owners = {slot_name(mid): mid for mid in statuses}
    named = []
    for s in slots:
        mid = owners.get(s.slot)
        status = statuses[mid] if mid is not None else None
        named.append(
            replace(s, migration_id=mid, migration_status=status, left_behind=left_behind(status))
        )
    return named


def slots_on(name: str, connection: Connection) -> list[Slot]:
    """The migrations' slots on one database server."""
    conninfo = connection.conninfo("migrator-slots")
    with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True) as c:
        rows = c.execute(QUERY, (PREFIX,)).fetchall()
    return [Slot(name, *row) for row in rows]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

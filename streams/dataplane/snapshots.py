"""One consistent view of a migration's source: the snapshot extract reads.

A keeper process of its own (streams.dataplane.keeper) opens a REPEATABLE
READ, read-only transaction, exports its snapshot (`pg_export_snapshot()`,
`export` here) and stays idle in that transaction while the copy needs it.
Every read of the source (the key checks, the row count, each chunk's
figures and rows) runs in a REPEATABLE READ transaction that first imports
it (`SET TRANSACTION SNAPSHOT`, `reading` here), so all of them see the
source as it was at one instant, whatever is written to it meanwhile.

A snapshot lives only as long as its keeper's transaction. One that can no
longer be imported (the keeper let go after its lease, or the source
restarted) raises `SnapshotLost`: extract never goes on in a newer view, it
starts over in a new snapshot (streams.dataplane.extract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from streams.dataplane.database import Conn, Database
from streams.dataplane.errors import SnapshotLost

# The position of the WAL at export, on a primary or a standby alike.
EXPORT = (
    "SELECT pg_export_snapshot(), now()::text, pg_current_snapshot()::text,"
    " (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
    " ELSE pg_current_wal_lsn() END)::text"
)
# What SET TRANSACTION SNAPSHOT raises for a snapshot whose keeper is gone.
GONE = (psycopg.errors.InvalidParameterValue, psycopg.errors.ObjectNotInPrerequisiteState)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot's identity and when it was taken: its id, the holder's
    `now()`, `pg_current_snapshot()` (xmin:xmax:xips) and the WAL LSN."""

    id: str
    taken_at: str
    xids: str
    lsn: str
    slot: str = ""  # the replication slot created with it (change capture), if any

    def as_json(self) -> dict[str, str]:
        """Its fields; `slot` only when it has one (a copy without capture)."""
        return {k: v for k, v in asdict(self).items() if k != "slot" or v}


async def export(conn: Conn) -> Snapshot:
    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    # held idle for the extract's life: a session's timeout would end it
    await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
    row = await (await conn.execute(EXPORT)).fetchone()
    assert row is not None
    return Snapshot(*(str(v) for v in row))


Exporting = Callable[[Conn], Awaitable[Snapshot]]


class Holder:
    """A snapshot held by a connection of this process, for one run: a small
    copy's (streams.dataplane.extract), which starts over whole if the run
    ends before it does."""

    def __init__(
        self, source: Database, exporting: Exporting = export, replication: bool = False
    ) -> None:
        self.source, self.exporting, self.replication = source, exporting, replication
        self.conn: Conn | None = None

    async def take(self) -> Snapshot:
        """A new snapshot (the one held before, if any, is let go), exported
        by `exporting` (on a `replication` connection: a replication slot's,
        streams.dataplane.cdc.slots)."""
        await self.close()
        self.conn, snapshot = await self.source.dedicated(self.exporting, self.replication)
        return snapshot

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.closed:
            await conn.close()


@asynccontextmanager
async def reading(source: Database, snapshot_id: str | None) -> AsyncIterator[Conn]:
    """A source connection in a read-only REPEATABLE READ transaction that
    sees snapshot `snapshot_id`; SnapshotLost when it cannot be imported."""
    if snapshot_id is None:
        raise SnapshotLost(None, "the copy began without one")
    async with source.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            await conn.execute(
                sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id))
            )
        except GONE:
            raise SnapshotLost(snapshot_id, "no longer held") from None
        yield conn


def snapshot_id(position: dict[str, Any]) -> str | None:
    """The id of the snapshot a checkpoint's copy is read in (None: none)."""
    found = position.get("snapshot")
    return str(found["id"]) if isinstance(found, dict) and "id" in found else None

"""A migration's replication slot on the source: created together with the
snapshot the copy reads, read with the SQL decoding functions, advanced only
past what the target committed, dropped at cancel and cutover.

Created on a `replication=database` connection, inside a REPEATABLE READ
transaction begun first: `CREATE_REPLICATION_SLOT <name> LOGICAL wal2json
(SNAPSHOT 'use')` makes that transaction read exactly the slot's consistent
point, and `pg_export_snapshot()` hands it to every reader of the copy. The
rows the snapshot sees and the changes the slot decodes after it are then
the source's whole history: nothing missed, nothing twice. The holder keeps
that transaction open (idle) as it keeps any snapshot (streams.dataplane.
snapshots / keeper); the slot itself outlives it.

Changes are peeked (`pg_logical_slot_peek_changes`), never consumed by the
read: the slot moves (`pg_replication_slot_advance`) only once the target
committed them, so a crash in between re-reads them and the stored position
(positions.py) skips what was applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from streams.dataplane.cdc.changes import Transaction, transactions
from streams.dataplane.database import Conn, Database
from streams.dataplane.errors import CaptureRefused
from streams.dataplane.snapshots import EXPORT, Snapshot

PLUGIN = "wal2json"
PREFIX = "migrator_"
# wal2json format 2: one row per change, commit times, only the captured table
OPTIONS = ("format-version", "2", "include-timestamp", "1", "include-types", "1")
PEEK = """
SELECT lsn::text, xid::text, data
FROM pg_logical_slot_peek_changes(%(slot)s, %(upto)s::pg_lsn, %(most)s, VARIADIC %(options)s)
"""


def slot_name(migration_id: str) -> str:
    """The slot of a migration: `migrator_<readable part>_<digest>`, at most 63
    characters of [a-z0-9_], the same for the same id."""
    readable = re.sub(r"[^a-z0-9_]", "_", migration_id.lower())[:32]
    digest = hashlib.sha256(migration_id.encode()).hexdigest()[:16]
    return f"{PREFIX}{readable}_{digest}"


def lsn_number(lsn: str) -> int:
    """An LSN's text (`16/B374D848`) as a number, to compare two."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def options(table: str) -> list[str]:
    schema, _, name = table.rpartition(".")
    return [*OPTIONS, "add-tables", f"{_escaped(schema or 'public')}.{_escaped(name)}"]


def _escaped(part: str) -> str:
    """A name as wal2json's add-tables reads it (`,` `.` `*` and spaces escaped)."""
    return re.sub(r"([,.* \\])", r"\\\1", part)


async def create_with_snapshot(conn: Conn, slot: str, plugin: str = PLUGIN) -> Snapshot:
    """On a `replication=database` autocommit connection: drop `slot` if it is
    left from an earlier copy, create it in a new REPEATABLE READ transaction
    and export that transaction's snapshot (held while `conn` stays in it).
    A replication connection speaks the simple query protocol only: no
    statement here takes parameters."""
    await conn.execute(
        sql.SQL(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = {}"
        ).format(sql.Literal(slot))
    )
    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    try:
        created = await conn.execute(
            sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL {} (SNAPSHOT 'use')").format(
                sql.Identifier(slot), sql.Identifier(plugin)
            ),
            prepare=False,
        )
    except psycopg.errors.UndefinedFile:
        raise CaptureRefused(
            f"the output plugin {plugin} is not installed on the source"
            " (Debian: postgresql-<version>-wal2json)"
        ) from None
    row = await created.fetchone()
    assert row is not None
    await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
    held = await (await conn.execute(EXPORT)).fetchone()
    assert held is not None
    return Snapshot(str(held[0]), str(held[1]), str(held[2]), str(row[1]), slot=slot)


async def drop(conn: Conn, slot: str) -> bool:
    """Drop `slot` if it exists (False: there was none)."""
    row = await (
        await conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = %s",
            (slot,),
        )
    ).fetchone()
    return row is not None


async def exists(conn: Conn, slot: str) -> bool:
    found = await conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    return await found.fetchone() is not None


@dataclass(frozen=True)
class Peeked:
    """What one look at the slot found: whole transactions committed before
    `upto` (the source's WAL position when it looked), and whether more were
    left for the next look (`more`: it stopped at `most` changes)."""

    upto: str
    now: str  # the source's clock then
    found: list[Transaction]
    more: bool

    @property
    def end(self) -> str:
        """How far the slot may move once `found` is applied."""
        last = self.found[-1].end if self.found else self.upto
        return last if self.more else max(last, self.upto, key=lsn_number)


async def peek(conn: Conn, slot: str, table: str, most: int) -> Peeked:
    """The transactions of `table` the slot holds, up to about `most` changes."""
    head = await (await conn.execute("SELECT pg_current_wal_lsn()::text, now()::text")).fetchone()
    assert head is not None
    params = {"slot": slot, "upto": head[0], "most": most, "options": options(table)}
    try:
        rows = await (await conn.execute(PEEK, params)).fetchall()
    except psycopg.errors.UndefinedObject:
        raise CaptureRefused(f"replication slot {slot} does not exist on the source") from None
    return Peeked(str(head[0]), str(head[1]), transactions(rows), len(rows) >= most)


async def advance(conn: Conn, slot: str, lsn: str) -> None:
    """Move the slot to `lsn` (never back: a slot already past it stays)."""
    await conn.execute(
        "SELECT pg_replication_slot_advance(slot_name, %(lsn)s::pg_lsn) FROM pg_replication_slots"
        " WHERE slot_name = %(slot)s AND confirmed_flush_lsn < %(lsn)s::pg_lsn",
        {"slot": slot, "lsn": lsn},
    )


@dataclass(frozen=True)
class Lag:
    """How far the slot is behind the source's WAL: bytes from its confirmed
    position to the current one, and its restart position (WAL retained)."""

    bytes: int
    retained_bytes: int
    confirmed: str


async def lag(conn: Conn, slot: str) -> Lag:
    row = await (
        await conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,"
            " confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        )
    ).fetchone()
    if row is None:
        raise CaptureRefused(f"replication slot {slot} does not exist on the source")
    return Lag(int(row[0] or 0), int(row[1] or 0), str(row[2]))


async def retained_bytes(conn: Conn) -> dict[str, int]:
    """WAL bytes each migration's slot keeps on the source (current position
    minus the slot's restart position), by slot name."""
    rows = await (
        await conn.execute(
            "SELECT slot_name, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)"
            "::bigint FROM pg_replication_slots WHERE starts_with(slot_name, %s)"
            " ORDER BY slot_name",
            (PREFIX,),
        )
    ).fetchall()
    return {str(name): int(size) for name, size in rows}


async def slot_retained_bytes(source: Database) -> dict[str, int]:
    """`retained_bytes` of a named source database (for the metric)."""
    return await source.autocommit(retained_bytes)

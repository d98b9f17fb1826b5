"""One migration's change capture, step by step: look at the slot, check
each new transaction's shape, apply them with their position in one target
transaction, then advance the slot to that position. Shared by the sync and
cutover phases.

A step's order is what makes apply exactly-once: the slot is only peeked
(a crash before the target commits loses nothing), the target commits the
rows and the position together (a crash after that commit re-reads the
same transactions, and those ending at or before the stored position are
skipped), and the slot moves last (it never passes what the target holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.dataplane.cdc import drift, positions, slots
from streams.dataplane.cdc.apply import Routes, apply
from streams.dataplane.cdc.changes import Transaction
from streams.dataplane.cdc.guards import shape_of
from streams.dataplane.cdc.positions import Position
from streams.dataplane.cdc.slots import Peeked, lsn_number
from streams.dataplane.context import PhaseContext, Progress
from streams.dataplane.database import Conn, Database
from streams.dataplane.errors import CaptureRefused, SchemaDrifted

MOST_CHANGES = 5000  # changes one step reads (whole transactions: a larger one comes whole)


@dataclass(frozen=True)
class Stepped:
    """What a step did: changes and transactions applied, where capture
    stands now, whether the slot held more (`more`), and the lag after it."""

    applied: int
    transactions: int
    position: Position
    more: bool
    lag_bytes: int
    lag_seconds: float


@dataclass
class Capture:
    """The capture of one migration: its source and target, its slot, the
    routes of its mapping and the shape changes must have."""

    migration_id: str
    source: Database
    target: Database
    table: str
    slot: str
    routes: Routes
    shape: drift.Shape

    @classmethod
    async def open(cls, ctx: PhaseContext) -> Capture:
        """The capture extract began (its stored position), for a phase run."""
        spec = ctx.spec
        stored = await ctx.target.autocommit(
            lambda c: positions.load(c, ctx.migration_id, spec.source_table)
        )
        if stored is None:
            raise CaptureRefused(
                f"migration {ctx.migration_id} has no capture position in the target:"
                " its copy was not taken with a replication slot (was `cdc` on at extract?)"
            )
        names = [n for n, _ in stored.shape.columns]
        routes = Routes.of(ctx.mapping, spec.source_key, names, spec.target_table)
        return cls(
            ctx.migration_id,
            ctx.source,
            ctx.target,
            spec.source_table,
            stored.slot,
            routes,
            stored.shape,
        )

    async def position(self) -> Position:
        found = await self.target.autocommit(
            lambda c: positions.load(c, self.migration_id, self.table)
        )
        if found is None:
            raise CaptureRefused(f"migration {self.migration_id}: its capture position is gone")
        return found

    async def step(self) -> Stepped:
        """Apply what the slot holds (up to MOST_CHANGES), then advance it."""
        stored = await self.position()
        peeked = await self.source.autocommit(
            lambda c: slots.peek(c, self.slot, self.table, MOST_CHANGES)
        )
        pending = [t for t in peeked.found if lsn_number(t.end) > lsn_number(stored.lsn)]
        fitting, drifted = self._fitting(pending)
        end = peeked.end if drifted is None else (fitting[-1].end if fitting else stored.lsn)
        if fitting or lsn_number(end) > lsn_number(stored.lsn):
            await self.target.transaction(lambda c: self._commit(c, fitting, end))
        await self.source.autocommit(lambda c: slots.advance(c, self.slot, end))
        if drifted is not None:
            raise drifted
        return await self._stepped(fitting, peeked)

    def _fitting(
        self, pending: list[Transaction]
    ) -> tuple[list[Transaction], SchemaDrifted | None]:
        """The transactions before the first one of another shape, and the drift it shows."""
        for i, txn in enumerate(pending):
            try:
                for change in txn.changes:
                    drift.check_change(self.shape, change)
            except SchemaDrifted as exc:
                return pending[:i], exc
        return pending, None

    async def _commit(self, conn: Conn, found: list[Transaction], end: str) -> None:
        await positions.load(conn, self.migration_id, self.table, lock=True)
        applied = 0
        for txn in found:
            applied += await apply(conn, self.routes, self.migration_id, txn.changes)
        await positions.save(conn, self.migration_id, end, applied, len(found))

    async def _stepped(self, applied: list[Transaction], peeked: Peeked) -> Stepped:
        lag = await self.source.autocommit(lambda c: slots.lag(c, self.slot))
        seconds = _age(peeked.now, applied[-1].committed_at) if peeked.more and applied else 0.0
        return Stepped(
            sum(len(t.changes) for t in applied),
            len(applied),
            await self.position(),
            peeked.more,
            lag.bytes,
            seconds,
        )

    async def check_catalog(self) -> None:
        """SchemaDrifted when the source table's columns changed (a DDL no
        change has shown yet); called when capture has caught up."""
        now = await self.source.autocommit(lambda c: shape_of(c, self.table))
        drift.check_catalog(self.shape, now.columns)

    async def drop_slot(self) -> None:
        await self.source.autocommit(lambda c: slots.drop(c, self.slot))


def _age(now: str, then: str) -> float:
    """Seconds from `then` to `now` (two timestamps the source printed)."""
    try:
        return max(0.0, (_parsed(now) - _parsed(then)).total_seconds())
    except ValueError:
        return 0.0


def _parsed(stamp: str) -> datetime:
    text = stamp.strip()
    if len(text) > 3 and text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"  # `+00` as ISO's `+00:00`
    return datetime.fromisoformat(text)


def progress(stepped: Stepped) -> Progress:
    """A sync or cutover run's progress: changes applied, the lag and the position."""
    done = stepped.position.changes
    return Progress(
        rows_done=done,
        rows_total=done,
        checkpoint=stepped.position.text(),
        lag_bytes=stepped.lag_bytes,
        lag_seconds=stepped.lag_seconds,
        position=stepped.position.lsn,
    )

"""Refold one migration from the log, from scratch: `migrator projection refold`.

Its events are read again from its partition of `migration.events`
(read_committed; the partition of its key, as every producer of the contract
places it), up to the offset the projector has stored for that partition. Then,
in one transaction that first locks `projection_offsets` (every projector batch
reads it first, so a batch in flight finishes before and the next one waits),
and only if that offset has not moved meanwhile (else it reads on and tries
again): its history, phases and row are deleted and folded again from those
events, by the projector's own fold and write, with NUL characters escaped
(see `projections.quarantine`) and the sequences escaped listed in the row.
The quarantine is lifted when the sequence is 1..N and storable, else kept with
the reason found now. The row takes a new feed version and live readers are
told (NOTIFY); the projector goes on from the same stored offsets, so it
applies the migration's later events once the quarantine is lifted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from config import KafkaNames, Settings
from domain.events import Event
from projections import store, storing
from projections.batch import PROJECTION, Batch, decode
from projections.event_log import open_log
from projections.exceptions import RefoldError
from projections.quarantine import Quarantine, escaped_event
from projections.schema import apply_schema

ATTEMPTS = 10


@dataclass
class Progress:
    """Offsets of the partition read so far, for a progress display."""

    partition: int = 0
    offsets_done: int = 0
    offsets_total: int = 0
    events: int = 0


@dataclass(frozen=True)
class Refolded:
    migration_id: str
    partition: int
    events: int  # its events read from the log
    version: int  # the sequence of the last event applied
    quarantine: Quarantine | None  # None: not quarantined (lifted, or never was)
    was_quarantined: bool
    escaped: tuple[int, ...] = field(default=())

    @property
    def lifted(self) -> bool:
        return self.was_quarantined and self.quarantine is None


def partition_of(migration_id: str, partitions: int) -> int:
    """The partition of a migration's records (murmur2 of its key, as the Java
    client, librdkafka's murmur2_random and aiokafka place it)."""
    hashed: int = murmur2(migration_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class Refold:
    def __init__(
        self,
        settings: Settings,
        migration_id: str,
        *,
        lock_timeout: float = 5.0,
        on_progress: Callable[[Progress], None] = lambda _: None,
    ) -> None:
        self.settings, self.migration_id = settings, migration_id
        self.topic = KafkaNames(
            app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix
        ).events
        self.lock_timeout, self.on_progress = lock_timeout, on_progress
        self.progress = Progress()
        self.events: list[Event] = []

    async def run(self) -> Refolded:
        conn = await _connect(self.settings)
        try:
            await apply_schema(conn)
            consumer, tp = await self._consumer()
            try:
                return await self._run(conn, consumer, tp)
            finally:
                await consumer.stop()
        finally:
            await conn.close()

    async def _run(
        self, conn: store.Conn, consumer: AIOKafkaConsumer, tp: TopicPartition
    ) -> Refolded:
        for _ in range(ATTEMPTS):
            target = (await store.stored_offsets(conn, PROJECTION, self.topic)).get(tp.partition, 0)
            await self._read_to(consumer, tp, target)
            if not self.events:
                raise RefoldError(
                    f"no event of migration {self.migration_id!r} in {self.topic}"
                    f"[{tp.partition}] below the projector's offset {target}"
                )
            try:
                async with conn.transaction():
                    if await self._offset_held(conn, tp, target):
                        return await self._replace(conn, tp)
            except psycopg.errors.LockNotAvailable:
                pass
        raise RefoldError(
            f"the projector kept moving {self.topic}[{tp.partition}] or holding its lock,"
            f" {ATTEMPTS} times: try again"
        )

    async def _consumer(self) -> tuple[AIOKafkaConsumer, TopicPartition]:
        consumer, partitions = await open_log(self.settings, self.topic, RefoldError)
        tp = TopicPartition(self.topic, partition_of(self.migration_id, partitions))
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        self.progress.partition = tp.partition
        return consumer, tp

    async def _read_to(self, consumer: AIOKafkaConsumer, tp: TopicPartition, target: int) -> None:
        """Read on to `target` (exclusive), keeping this migration's events."""
        first = (await consumer.beginning_offsets([tp]))[tp]
        self.progress.offsets_total = max(0, target - first)
        while await consumer.position(tp) < target:
            fetched: Batch = await consumer.getmany(tp, timeout_ms=500)
            kept = [r for r in fetched.get(tp, []) if r.offset < target]
            self.events += [e for e in decode({tp: kept}) if e.migration_id == self.migration_id]
            if await consumer.position(tp) > target:
                consumer.seek(tp, target)  # the rest is read once the projector is there
            self.progress.offsets_done = await consumer.position(tp) - first
            self.progress.events = len(self.events)
            self.on_progress(self.progress)

    async def _offset_held(self, conn: store.Conn, tp: TopicPartition, target: int) -> bool:
        """Lock the offsets (projector batches wait); has the partition stayed at `target`?"""
        await conn.execute(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
        await conn.execute("LOCK TABLE projection_offsets IN ACCESS EXCLUSIVE MODE")
        stored = await store.stored_offsets(conn, PROJECTION, self.topic)
        return stored.get(tp.partition, 0) == target

    async def _replace(self, conn: store.Conn, tp: TopicPartition) -> Refolded:
        mid = self.migration_id
        before = (await store.load_rows(conn, [mid])).get(mid)
        await store.forget(conn, mid)
        events, escaped = _escaped(self.events)
        folded, feed = await storing.write(conn, {}, {}, events, {})
        row = folded.rows[mid]
        applied = sorted({e.sequence for e in folded.history if id(e) in escaped})
        await store.mark_escaped(conn, mid, applied)
        await store.notify(conn, feed, {mid: row.state.version})
        return Refolded(
            mid,
            tp.partition,
            len(self.events),
            row.state.version,
            row.quarantine,
            before is not None and before.quarantine is not None,
            tuple(applied),
        )


def _escaped(events: list[Event]) -> tuple[list[Event], set[int]]:
    """The events with their NULs escaped, and the ids (id()) of those escaped."""
    out: list[Event] = []
    escaped: set[int] = set()
    for event in events:
        changed = escaped_event(event)
        if changed is not None:
            escaped.add(id(changed))
        out.append(changed or event)
    return out, escaped


async def _connect(settings: Settings) -> store.Conn:
    dsn = settings.database.url.get_secret_value()
    try:
        return await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise RefoldError(f"the read model's database is unreachable: {exc}".strip()) from exc

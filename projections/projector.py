"""The projector: `migration.events` (read_committed) into PostgreSQL.

Each batch's rows and the offsets it consumed commit in one database
transaction, with a NOTIFY that live readers (the API) hear at commit; on
(re)assignment it resumes from the offsets stored there. A gap in a
migration's sequence, or a repeated sequence with other content, halts it; an
offset moved by another projector (fenced: a retriable error) makes it leave
the group, and a restart resumes from the stored offsets. An undecodable event
is skipped, counted and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Sequence

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import start_http_server

from config import KafkaNames, Settings
from domain.errors import MigratorError
from domain.events import Event
from projections import metrics, store
from projections.exceptions import SequenceConflict
from projections.faults import Faults
from projections.fold import Folded, fold_batch
from projections.schema import apply_schema
from schemas import RecordError, decode_event
from schemas.records import to_plain
from streams.kafka import clients

log = logging.getLogger(__name__)
PROJECTION = "read-model"
Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class Projector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        self.faults = Faults(settings.fault.projector, settings.fault.projector_batch)
        self._stopping = asyncio.Event()
        self.lock = asyncio.Lock()  # a batch in flight, or a seek on assignment
        self._last_seen: dict[int, float] = {}  # partition -> timestamp (s) of its last event

    async def run(self) -> None:
        if self.settings.projector.metrics_port:
            start_http_server(self.settings.projector.metrics_port)
        dsn = self.settings.database.url.get_secret_value()
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await apply_schema(conn)
            consumer = self._consumer()
            consumer.subscribe([self.names.events], listener=_Resume(self, consumer, conn))
            await consumer.start()
            try:
                await self._loop(consumer, conn)
            except MigratorError as exc:
                _give_up(exc)
                raise
            finally:
                await consumer.stop()

    def stop(self) -> None:
        self._stopping.set()

    def _consumer(self) -> AIOKafkaConsumer:
        return clients.aio_consumer(self.settings, self.names.projector_group)

    async def _loop(self, consumer: AIOKafkaConsumer, conn: store.Conn) -> None:
        while not self._stopping.is_set():
            batch: Batch = await consumer.getmany(
                timeout_ms=200, max_records=self.settings.projector.batch_max
            )
            if batch:
                await self.project(conn, batch)
            await self._measure_lag(consumer)

    async def project(self, conn: store.Conn, batch: Batch) -> None:
        """Apply one batch and advance its offsets, all in one transaction.

        aiokafka may run the rebalance listener while a batch is in flight: the
        lock makes its seek wait for the commit, and records below the stored
        offset (fetched again after such a seek) are skipped."""
        began = time.perf_counter()
        for tp, records in batch.items():
            self._last_seen[tp.partition] = records[-1].timestamp / 1000
        async with self.lock, conn.transaction():
            folded = await apply_batch(conn, self.names.events, batch)
            self.faults.before_commit()
        metrics.BATCH_COMMIT.observe(time.perf_counter() - began)
        metrics.BATCH_EVENTS.observe(len(folded.history))
        metrics.EVENTS.inc(len(folded.history))
        for outcome, seconds in folded.durations:
            metrics.MIGRATION_DURATION.labels(outcome).observe(seconds)

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        behind_since: list[float] = []
        for tp in consumer.assignment():
            stable = consumer.last_stable_offset(tp)
            if stable is None:
                continue
            lag = max(0, stable - await consumer.position(tp))
            metrics.LAG_RECORDS.labels(str(tp.partition)).set(lag)
            if lag and tp.partition in self._last_seen:
                behind_since.append(self._last_seen[tp.partition])
        metrics.LAG_SECONDS.set(time.time() - min(behind_since) if behind_since else 0.0)


def _give_up(exc: MigratorError) -> None:
    """Say why the projector stops: nothing of the batch was applied, and
    leaving the group (the consumer stops) lets the partitions move on."""
    if exc.retriable:
        log.warning("projection fenced, leaving the group; nothing of the batch applied: %s", exc)
    else:
        log.critical("projection halted, nothing of the batch applied: %s", exc)


async def apply_batch(conn: store.Conn, topic: str, batch: Batch, *, notify: bool = True) -> Folded:
    """Apply the records of `batch` not yet applied and advance the stored
    offsets (compare-and-set), inside the caller's transaction. The rebuild
    (`projections.rebuild`) applies its batches with this too, without NOTIFY."""
    stored = await store.stored_offsets(conn, PROJECTION, topic)
    batch = _unprojected(batch, stored)
    folded = await _fold(conn, _decode(batch))
    feed = await store.write(conn, folded)
    if notify:
        versions = {mid: row.state.version for mid, row in folded.rows.items()}
        await store.notify(conn, feed, versions)
    await _advance(conn, batch, stored)
    return folded


def _decode(batch: Batch) -> list[Event]:
    events: list[Event] = []
    for tp, records in batch.items():
        for record in records:
            try:
                events.append(decode_event(record.value, list(record.headers)))
            except RecordError as exc:
                metrics.UNDECODABLE.inc()
                log.error("undecodable event at %s[%s]: %s", tp.topic, record.offset, exc)
    return events


async def _fold(conn: store.Conn, events: Sequence[Event]) -> Folded:
    mids = sorted({e.migration_id for e in events})
    rows = await store.load_rows(conn, mids)
    folded = fold_batch(rows, await store.load_phases(conn, mids), events)
    if folded.duplicates:
        await _check_duplicates(conn, folded)
    return folded


async def _advance(conn: store.Conn, batch: Batch, stored: dict[int, int]) -> None:
    for tp, records in batch.items():
        new = records[-1].offset + 1
        await store.advance_offset(
            conn, PROJECTION, tp.topic, tp.partition, stored.get(tp.partition), new
        )


def _unprojected(batch: Batch, stored: dict[int, int]) -> Batch:
    """The records at or past each partition's stored offset."""
    kept = {
        tp: [r for r in records if r.offset >= stored.get(tp.partition, 0)]
        for tp, records in batch.items()
    }
    return {tp: records for tp, records in kept.items() if records}


async def _check_duplicates(conn: store.Conn, folded: Folded) -> None:
    """A repeat of an applied event is skipped, loudly; a repeat with other
    content means the log forked: refuse it."""
    applied = {(e.migration_id, e.sequence): _plain(e) for e in folded.history}
    keys = [(e.migration_id, e.sequence) for e in folded.duplicates]
    stored = await store.stored_events(conn, [k for k in keys if k not in applied])
    for event, key in zip(folded.duplicates, keys, strict=True):
        before = applied.get(key, stored.get(key))
        if before != _plain(event):
            raise SequenceConflict(
                f"migration {key[0]}: event {key[1]} seen again with other content"
                f" ({event.type}, event id {event.event_id})"
            )
        metrics.DUPLICATES.inc()
        log.error("event %s (sequence %s) seen again; not applied twice", event.event_id, key[1])


def _plain(event: Event) -> object:
    """The event as its JSONB history row holds it."""
    return json.loads(json.dumps(to_plain(event)))


class _Resume(ConsumerRebalanceListener):
    """On assignment, seek to the offsets stored with the rows."""

    def __init__(self, owner: Projector, consumer: AIOKafkaConsumer, conn: store.Conn) -> None:
        self.owner, self.consumer, self.conn = owner, consumer, conn

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        topic = self.owner.names.events
        async with self.owner.lock:
            stored = await store.stored_offsets(self.conn, PROJECTION, topic)
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)

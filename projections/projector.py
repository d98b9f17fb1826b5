"""The projector: `migration.events` (read_committed) into PostgreSQL.

Each batch's rows and the offsets it consumed commit in one database
transaction (`projections.batch`), with a NOTIFY that live readers (the API)
hear at commit; on (re)assignment it resumes from the offsets stored there. A
gap, a fork or an event the database refuses quarantines that one migration,
in the same transaction, and the others go on (`projections.quarantine`). An
offset moved by another projector (fenced: a retriable error) makes it leave
the group, and a restart resumes from the stored offsets. An undecodable event
is skipped, counted and logged.

The database going away (a restart, a lost connection) is ridden out: the
batch in flight is rolled back (or it committed, and its stored offsets say
so), the projector reconnects with backoff and jitter for up to
PROJECTOR_DB_OUTAGE_SECONDS, then seeks every partition it owns back to its
stored offset. It logs one line when the database goes and one when it is
back, never one per try.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import start_http_server
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay
from tenacity import wait_random_exponential as jittered

from config import KafkaNames, Settings
from domain.errors import MigratorError
from projections import metrics, store
from projections.batch import PROJECTION, Batch, apply_batch
from projections.exceptions import ReadModelUnreachable
from projections.faults import Faults
from projections.row_cache import RowCache
from projections.schema import apply_schema
from projections.storing import describe
from streams.kafka import clients
from streams.kafka.tracing import each_trace

__all__ = ["PROJECTION", "Batch", "Projector"]
log = logging.getLogger(__name__)
LOST = (psycopg.OperationalError, psycopg.InterfaceError)
QUARANTINE_COUNT_SECONDS = 5.0  # how often the gauge is read again (a refold lifts some)
_Work = Callable[[], Awaitable[object]]


class Projector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        self.faults = Faults(settings.fault.projector, settings.fault.projector_batch)
        self._stopping = asyncio.Event()
        self.lock = asyncio.Lock()  # a batch in flight, a seek on assignment, a reconnect
        self._last_seen: dict[int, float] = {}  # partition -> timestamp (s) of its last event
        self._conn: store.Conn | None = None
        self._counted = 0.0  # when the quarantined migrations were last counted
        self.rows = RowCache()  # the rows it wrote, checked against the stored ones

    @property
    def conn(self) -> store.Conn:
        assert self._conn is not None, "connected in run()"
        return self._conn

    async def run(self) -> None:
        if self.settings.projector.metrics_port:
            start_http_server(self.settings.projector.metrics_port)
        async with self.lock:
            await self._connect()
        try:
            await self._with_database(lambda: apply_schema(self.conn))
            consumer = self._consumer()
            consumer.subscribe([self.names.events], listener=_Resume(self, consumer))
            await consumer.start()
            try:
                await self._loop(consumer)
            except MigratorError as exc:
                _give_up(exc)
                raise
            finally:
                await consumer.stop()
        finally:
            await self.conn.close()

    def stop(self) -> None:
        self._stopping.set()

    def _consumer(self) -> AIOKafkaConsumer:
        return clients.aio_consumer(self.settings, self.names.projector_group)

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batch: Batch = await consumer.getmany(
                timeout_ms=200, max_records=self.settings.projector.batch_max
            )
            try:
                if batch:
                    await self.project(self.conn, batch)
                await self._count_quarantined()
            except LOST as exc:
                await self._recover(consumer, exc)
                continue
            await self._measure_lag(consumer)

    async def project(self, conn: store.Conn, batch: Batch) -> None:
        """Apply one batch and advance its offsets, all in one transaction.

        aiokafka may run the rebalance listener while a batch is in flight: the
        lock makes its seek wait for the commit, and records below the stored
        offset (fetched again after such a seek) are skipped."""
        began = time.perf_counter()
        for tp, records in batch.items():
            self._last_seen[tp.partition] = records[-1].timestamp / 1000
        traced = (r.headers for records in batch.values() for r in records)
        async with each_trace("projector commit", traced), self.lock:
            async with conn.transaction():
                folded = await apply_batch(conn, self.names.events, batch, cache=self.rows)
                self.faults.before_commit()
            self.rows.remember(folded)
        metrics.BATCH_COMMIT.observe(time.perf_counter() - began)
        metrics.BATCH_EVENTS.observe(len(folded.history))
        metrics.EVENTS.inc(len(folded.history))
        for outcome, seconds in folded.durations:
            metrics.MIGRATION_DURATION.labels(outcome).observe(seconds)
        if folded.quarantined:
            self._counted = 0.0  # count again now

    async def stored_offsets(self) -> dict[int, int]:
        """The stored offsets of the events topic (the caller holds the lock)."""
        while True:
            try:
                return await store.stored_offsets(self.conn, PROJECTION, self.names.events)
            except LOST as exc:
                await self._reconnect(exc)

    async def _count_quarantined(self) -> None:
        if time.monotonic() - self._counted < QUARANTINE_COUNT_SECONDS:
            return
        async with self.lock:
            metrics.QUARANTINED.set(await store.count_quarantined(self.conn))
        self._counted = time.monotonic()

    async def _recover(self, consumer: AIOKafkaConsumer, exc: BaseException) -> None:
        """After the database failed a batch: reconnect, then read every owned
        partition again from its stored offset (the batch may have committed)."""
        async with self.lock:
            await self._reconnect(exc)
            await seek_to_stored(consumer, consumer.assignment(), await self.stored_offsets())

    async def _with_database(self, work: _Work) -> None:
        async with self.lock:
            while True:
                try:
                    await work()
                    return
                except LOST as exc:
                    await self._reconnect(exc)

    async def _reconnect(self, exc: BaseException) -> None:
        log.warning(
            "read model database lost (%s); reconnecting with backoff for up to %g s",
            _first_line(exc),
            self.settings.projector.db_outage_seconds,
        )
        began = time.monotonic()
        if self._conn is not None:
            await self._conn.close()
        self.rows.clear()
        await self._connect()
        log.warning(
            "read model database back after %.1f s; resuming from the stored offsets",
            time.monotonic() - began,
        )

    async def _connect(self) -> None:
        dsn = self.settings.database.url.get_secret_value()
        limit = self.settings.projector.db_outage_seconds
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(LOST),
                wait=jittered(multiplier=0.2, max=5),
                stop=stop_after_delay(limit),
                reraise=True,
            ):
                with attempt:
                    self._conn = await psycopg.AsyncConnection.connect(
                        dsn, autocommit=True, connect_timeout=5
                    )
        except LOST as exc:
            raise ReadModelUnreachable(
                f"the read model's database stayed unreachable for {limit:g} s: {_first_line(exc)}"
            ) from exc

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


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        return f"{type(exc).__name__}: {describe(exc)}"
    return f"{type(exc).__name__}: {exc}"


async def seek_to_stored(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition], stored: dict[int, int]
) -> None:
    for tp in partitions:
        if tp.partition in stored:
            consumer.seek(tp, stored[tp.partition])
        else:
            await consumer.seek_to_beginning(tp)


class _Resume(ConsumerRebalanceListener):
    """On assignment, seek to the offsets stored with the rows."""

    def __init__(self, owner: Projector, consumer: AIOKafkaConsumer) -> None:
        self.owner, self.consumer = owner, consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        async with self.owner.lock:
            stored = await self.owner.stored_offsets()
        await seek_to_stored(self.consumer, assigned, stored)

"""The projector: `migration.events` (read_committed) into PostgreSQL.

Each batch's rows and the offsets it consumed commit in one database
transaction; on (re)assignment it resumes from the offsets stored there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from config import KafkaNames, Settings
from projections import store
from projections.schema import apply_schema
from schemas import RecordError, decode_event

log = logging.getLogger(__name__)
PROJECTION = "read-model"
Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class Projector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = KafkaNames(app_id=settings.app_id, prefix=settings.topic_prefix)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        dsn = self.settings.database_url.get_secret_value()
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await apply_schema(conn)
            consumer = self._consumer()
            consumer.subscribe([self.names.events], listener=_Resume(self, consumer, conn))
            await consumer.start()
            try:
                await self._loop(consumer, conn)
            finally:
                await consumer.stop()

    def stop(self) -> None:
        self._stopping.set()

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.names.projector_group,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def _loop(self, consumer: AIOKafkaConsumer, conn: store.Conn) -> None:
        while not self._stopping.is_set():
            batch: Batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            if batch:
                await self.project(conn, batch)

    async def project(self, conn: store.Conn, batch: Batch) -> None:
        """Apply one batch and advance its offsets, all in one transaction."""
        async with conn.transaction():
            stored = await store.stored_offsets(conn, PROJECTION, self.names.events)
            for tp, records in batch.items():
                await self._apply_records(conn, records)
                old = stored.get(tp.partition)
                new = records[-1].offset + 1
                await store.advance_offset(conn, PROJECTION, tp.topic, tp.partition, old, new)

    async def _apply_records(
        self, conn: store.Conn, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        for record in records:
            try:
                event = decode_event(record.value, list(record.headers))
            except RecordError as exc:
                log.error("skipping undecodable event at offset %s: %s", record.offset, exc)
                continue
            if not await store.apply_event(conn, event):
                log.warning("duplicate event %s ignored", event.event_id)


class _Resume(ConsumerRebalanceListener):
    """On assignment, seek to the offsets stored with the rows."""

    def __init__(self, owner: Projector, consumer: AIOKafkaConsumer, conn: store.Conn) -> None:
        self.owner, self.consumer, self.conn = owner, consumer, conn

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        topic = self.owner.names.events
        stored = await store.stored_offsets(self.conn, PROJECTION, topic)
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)

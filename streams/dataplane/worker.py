"""The phase worker process: `migration.phase-tasks` in, `migration.phase-results` out.

The Kafka loop only reads tasks and hands them to the scheduler; phases run
as tasks on the event loop (database I/O is async), so a long phase never
holds up polling, heartbeats or other migrations. A task's offset is
committed once its run has ended and its result is written (at least once);
the checkpoints in the target database make a repeated task resume, not
redo. Undecodable tasks go to the dead-letter topic with error headers.

The worker also writes to `migration.phase-tasks`: the scheduler broadcasts a
run (marked `assist`) to every partition but the run's own, so the group's
other members help with it (streams.dataplane.scheduler). The partitions are
named explicitly, from the producer's metadata of the topic; the key stays
the migration id.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterable

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from config import KafkaNames, Settings
from domain import PhaseResult, PhaseTask, StopReason
from schemas import RecordError, decode_task, encode
from streams.dataplane.context import Limiter
from streams.dataplane.database import Databases
from streams.dataplane.metrics import pools_collected
from streams.dataplane.offsets import OffsetTracker
from streams.dataplane.scheduler import Scheduler
from streams.kafka import clients, tracing
from streams.kafka.dead_letters import dead_letter

log = logging.getLogger(__name__)
COMMIT_EVERY = 1.0


class PhaseWorker:
    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings, self.stop = settings, stop
        self.names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        self.worker_id = settings.phase.worker_id or f"phase-{uuid.uuid4().hex[:8]}"
        self.databases = Databases(settings)
        self.tracker = OffsetTracker()
        self.producer = clients.aio_producer(settings, client_id=self.worker_id)
        self.consumer = clients.aio_consumer(
            settings,
            self.names.phase_worker_group,
            client_id=self.worker_id,
            session_timeout_ms=settings.worker.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.worker.session_timeout_ms // 5),
            max_poll_interval_ms=settings.worker.max_poll_interval_ms,
        )
        self.scheduler = Scheduler(
            self.databases,
            Limiter(settings.phase.concurrency),
            self.send,
            self.broadcast,
            self.worker_id,
            settings.phase.progress_interval_seconds,
        )

    async def run(self) -> None:
        with pools_collected(self.databases.pools):
            await self._run()

    async def _run(self) -> None:
        await self.producer.start()
        try:
            self.consumer.subscribe([self.names.phase_tasks], listener=_Handover(self))
            await self.consumer.start()
            try:
                await self._loop()
                await self.scheduler.shutdown()
                await self.commit()
            finally:
                await self.consumer.stop()
        finally:
            await self.producer.stop()
            await self.databases.close()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        while not self.stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
            for records in batch.values():
                for record in records:
                    await self._take(record)
            if loop.time() - last_commit >= COMMIT_EVERY:
                await self.commit()
                last_commit = loop.time()

    async def _take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        partition, offset = record.partition, record.offset
        self.tracker.add(partition, offset)
        try:
            task = decode_task(record.value, list(record.headers))
        except RecordError as exc:
            await self._dead_letter(record, exc)
            self.tracker.done(partition, offset)
            return
        with tracing.attached(record.headers):  # the runs it starts continue the task's trace
            self.scheduler.handle(task, partition, lambda: self.tracker.done(partition, offset))

    async def send(self, result: PhaseResult) -> None:
        value, headers = encode(result)
        headers = tracing.injected(headers)
        await self.producer.send_and_wait(
            self.names.phase_results, value, key=result.migration_id.encode(), headers=headers
        )

    async def broadcast(self, task: PhaseTask, home: int) -> None:
        """Send `task` to every partition of the phase-tasks topic but `home`."""
        topic = self.names.phase_tasks
        value, headers = encode(task)
        headers = tracing.injected(headers)
        others = sorted(await self.producer.partitions_for(topic) - {home})
        sent = [
            await self.producer.send(
                topic, value, key=task.migration_id.encode(), partition=p, headers=headers
            )
            for p in others
        ]
        await asyncio.gather(*sent)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: Exception) -> None:
        log.error("undecodable task at %s:%s: %s", record.partition, record.offset, error)
        letter = dead_letter(
            record, error, self.names.dlq(record.topic), self.names.phase_worker_group
        )
        await self.producer.send_and_wait(
            letter.topic, letter.value, key=letter.key, headers=letter.headers
        )

    async def commit(self, only: set[int] | None = None) -> None:
        offsets = {p: o for p, o in self.tracker.committable().items() if only is None or p in only}
        assigned = {tp.partition for tp in self.consumer.assignment()}
        offsets = {p: o for p, o in offsets.items() if p in assigned}
        if offsets:
            topic = self.names.phase_tasks
            await self.consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
            self.tracker.mark_committed(offsets)


class _Handover(ConsumerRebalanceListener):
    """Before partitions move, stop their runs between batches and commit
    what finished; the next owner resumes the rest from their checkpoints."""

    def __init__(self, worker: PhaseWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        partitions = {tp.partition for tp in revoked}
        if not partitions:
            return
        await self.worker.scheduler.stop_partitions(partitions, StopReason.REVOKED)
        try:
            await self.worker.commit(partitions)
        except Exception as exc:  # the group moved on already; the next owner repeats
            log.warning("commit on revoke failed: %s", exc)
        self.worker.tracker.forget(partitions)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None


def run_phase_worker(stop: threading.Event) -> None:
    from streams.process import start_process

    settings = start_process("phase")
    tracing.start(settings, "migrator-phase-worker")
    asyncio.run(_serve(settings, stop))


async def _serve(settings: Settings, stop: threading.Event) -> None:
    await PhaseWorker(settings, stop).run()  # aiokafka clients need the running loop

"""The orchestrator loop, on confluent-kafka (librdkafka): commands and phase
results in (co-partitioned), events, phase tasks and dead letters out.

Per batch of inputs the loop decodes, handles and writes; its committer
(`streams.orchestrator.committer`) holds the processing guarantee: what the
batch's outputs, state changes and offsets become, and when they are final.
An input that cannot be decoded or handled is dead-lettered, never retried:
it would block its partition.

Every input is decided on its migration's home partition (its key's, by the
Java partitioner), whatever client wrote it and however it was keyed: one
that arrived elsewhere is forwarded home inside the batch's transaction, and
decided when it is read there. A migration's state, events and tasks so stay
on one partition, in one order.

Between batches, once a second (or after each batch while more are due), the
loop retires the finished migrations past the retention period
(domain.retention), up to RETIRE_BATCH in a batch of their own: their states
leave the store and the changelog.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from config import KafkaNames, Settings
from domain import Input, PhaseResult
from domain.retention import retired
from schemas import RecordError, decode_command, decode_result, encode
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letters import dead_letter
from streams.kafka.partitions import home_partition
from streams.kafka.produce import produce
from streams.kafka.retrying import is_transient, transient_retry
from streams.kafka.tracing import consumed, each_trace, note
from streams.orchestrator import metrics
from streams.orchestrator.committer import committer_for
from streams.orchestrator.handling import Outcome, handle
from streams.orchestrator.state_store import Slot, StateStore, load_changelog

log = logging.getLogger(__name__)
BATCH = 1000  # inputs per transaction at most: its commit is shared by this many
TIMEOUT = 30.0
FORWARDED_FROM = "migrator-forwarded-from"  # topic[partition]@offset where it first landed
SWEEP_SECONDS = 1.0  # how often the loop looks for migrations to retire
RETIRE_BATCH = 500  # migrations retired in one batch at most


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class OrchestratorLoop:
    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings, self.stop = settings, stop
        self.names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        self.worker_id = settings.worker.id or uuid.uuid4().hex[:12]
        self.states = StateStore(settings.worker.state_retention_seconds)
        self._swept = 0.0
        self.consumer = clients.consumer(
            settings, self.names.orchestrator_group, **self._consumer_config()
        )
        self.committer = committer_for(
            settings, self.names, self.worker_id, self.consumer, self.states
        )
        self._partitions: dict[str, int] = {}  # input topic -> its partition count
        self._unsynced: set[tuple[str, int]] = set()  # assigned, states not yet loaded
        self.committer.on_renewed = self._resync

    @property
    def producer(self) -> Producer:
        """The committer's producer (renewed when a transaction is lost)."""
        return self.committer.producer

    # --- life cycle -------------------------------------------------------------------

    def run(self) -> None:
        try:
            if not self.stop.is_set():
                self.start()
                self._loop()
        finally:
            self._shutdown()

    def start(self) -> None:
        """Fence this worker's previous instance, then join the group."""
        self.committer.start()
        self.consumer.subscribe(
            [self.names.commands, self.names.phase_results],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info(
            "orchestrator %s started (%s)",
            self.worker_id,
            self.settings.worker.processing_guarantee,
        )

    def _consumer_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            # range gives every member the same partition numbers of both input
            # topics: co-partitioning, the per-migration lock.
            "partition.assignment.strategy": "range",
            "session.timeout.ms": self.settings.worker.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.settings.worker.session_timeout_ms // 5),
            # A member whose loop stops polling (a call stuck in librdkafka
            # until the watchdog ends it) leaves the group this soon.
            "max.poll.interval.ms": self.settings.worker.max_poll_interval_ms,
        }
        if self.settings.worker.id:
            # Static membership (KIP-345): a restarted instance takes its
            # partitions back at once, without waiting for a rebalance.
            extra["group.instance.id"] = self.names.transactional_id(self.worker_id)
        return extra

    def _loop(self) -> None:
        while not self.stop.is_set():
            polled = self._next_batch()
            if self._unsynced:
                self._sync_assigned()
            msgs = [Consumed.of(m) for m in polled if self._usable(m)]
            if msgs:
                self._batch(msgs)
            self._retire_due()
            self.committer.tick()

    def _next_batch(self) -> list[Message]:
        """Wait for the first input only, then take what is already fetched:
        a batch never waits for more input than there is."""
        first = self.consumer.poll(0.2)
        if first is None:
            return []
        return [first, *self.consumer.consume(BATCH - 1, 0)]

    def _shutdown(self) -> None:
        try:
            self.committer.close()
            self.consumer.close()  # leaves the group at once
        finally:
            self.producer.flush(TIMEOUT)
        log.info("orchestrator %s stopped", self.worker_id)

    def _usable(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.fatal() or err.code() == KafkaError._FATAL:  # e.g. a twin group.instance.id
            raise KafkaException(err)  # the consumer is done: exit, to be restarted
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err)
        return False

    # --- one batch --------------------------------------------------------------------

    def _batch(self, msgs: Sequence[Consumed]) -> None:
        metrics.BATCH_INPUTS.observe(len(msgs))
        at = now()  # one time for the batch: its inputs are decided together
        traced = (msg.headers for msg in msgs)
        with each_trace("orchestrator batch", traced), self.committer.batch():
            for msg in msgs:
                with consumed(f"orchestrator {msg.topic}", msg.headers):
                    self._one(msg, at)

    def _retire_due(self) -> None:
        """Retire the finished migrations past the retention period."""
        if time.monotonic() - self._swept < SWEEP_SECONDS:
            return
        due = self.states.due(time.time(), RETIRE_BATCH)
        if len(due) < RETIRE_BATCH:  # else more are due: again after the next batch
            self._swept = time.monotonic()
        if not due:
            return
        with self.committer.batch():
            for slot, state in due:
                self.committer.stage(slot, retired(state))
        metrics.RETIRED.inc(len(due))
        log.info("retired %d finished migrations", len(due))

    # --- one input --------------------------------------------------------------------

    def _one(self, msg: Consumed, at: str) -> None:
        self.committer.store_offset(msg)
        try:
            given = self._decode(msg)
        except RecordError as exc:
            self._dead_letter(msg, exc)
            return
        note(**{"migration.id": given.migration_id, "input": type(given).__name__})
        key = given.migration_id.encode()
        home = home_partition(key, self._partition_count(msg.topic))
        if msg.key != key or msg.partition != home:
            self._forward(msg, key, home)
            return
        slot: Slot = (msg.partition, given.migration_id)
        state = self.committer.state(slot)
        try:
            outcome = handle(state, given, at)
        except Exception as exc:  # a deterministic failure: never block the partition
            log.exception("input %s[%s]@%s failed", msg.topic, msg.partition, msg.offset)
            self._dead_letter(msg, exc)
            return
        self._count(given, outcome)
        self._write(key, outcome)
        if outcome.changed:
            self.committer.stage(slot, outcome.state)

    def _forward(self, msg: Consumed, key: bytes, home: int) -> None:
        """Keyed otherwise, or by another partitioner: send it to its
        migration's partition, keyed by the migration, to be decided there."""
        log.debug(
            "forwarding %s[%s]@%s to partition %s", msg.topic, msg.partition, msg.offset, home
        )
        origin = f"{msg.topic}[{msg.partition}]@{msg.offset}".encode()
        headers = [*msg.headers, (FORWARDED_FROM, origin)]
        produce(self.producer, msg.topic, key, msg.value, headers, home)
        metrics.FORWARDED.labels(msg.topic).inc()

    def _partition_count(self, topic: str) -> int:
        if topic not in self._partitions:
            self._learn_partitions([topic])
        return self._partitions[topic]

    def _learn_partitions(self, topics: Sequence[str]) -> None:
        for topic in topics:
            found = self.consumer.list_topics(topic, TIMEOUT).topics[topic]
            self._partitions[topic] = len(found.partitions)

    def _decode(self, msg: Consumed) -> Input:
        if msg.topic == self.names.commands:
            return decode_command(msg.value, msg.headers)
        return decode_result(msg.value, msg.headers)

    def _write(self, key: bytes, outcome: Outcome) -> None:
        for event in outcome.events:
            produce(self.producer, self.names.events, key, *encode(event))
        for task in outcome.tasks:
            produce(self.producer, self.names.phase_tasks, key, *encode(task))

    def _count(self, given: Input, outcome: Outcome) -> None:
        if not isinstance(given, PhaseResult):
            metrics.count_command(given.type, outcome.events)
        metrics.count_lifecycle(outcome.events)

    def _dead_letter(self, msg: Consumed, error: Exception) -> None:
        log.warning("dead-lettering %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, error)
        letter = dead_letter(msg, error, self.names.dlq(msg.topic), self.names.orchestrator_group)
        produce(self.producer, letter.topic, letter.key, letter.value, letter.headers)
        metrics.DLQ_WRITTEN.labels(letter.topic).inc()

    # --- rebalancing (called from inside consume(), between batches) ------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing that blocks here (a callback inside poll, where another
        # client's calls are unsafe): the loop syncs them before their inputs.
        self._unsynced |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("assigned partitions %s", sorted({tp.partition for tp in partitions}))

    def _sync_assigned(self) -> None:
        """Newly assigned partitions: their committed offsets once stable,
        then their states from the changelog, before any of their inputs."""
        pending, self._unsynced = sorted(self._unsynced), set()
        partitions = [TopicPartition(topic, partition) for topic, partition in pending]
        numbers = {partition for _, partition in pending}
        self._learn_partitions(sorted({topic for topic, _ in pending}))  # they may have grown
        # With read_committed, this waits for a previous owner's open
        # transaction on these partitions to end (KIP-447 require_stable):
        # only then is the changelog complete up to the committed offsets.
        self._stable_offsets(partitions)
        self.states.adopt(load_changelog(self.settings, self.names.state_changelog, numbers))
        metrics.ACTIVE.set(self.states.count_active())
        metrics.gauge_live(self.states)

    def _resync(self) -> None:
        """Start again from what Kafka holds for the assigned partitions: the
        committed offsets and the changelog's states (a lost transaction may
        or may not have committed)."""
        assigned = self.consumer.assignment()
        committed = transient_retry(lambda: self.consumer.committed(assigned, TIMEOUT))
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, start))
        numbers = {tp.partition for tp in assigned}
        self.states.drop(numbers)
        self.states.adopt(load_changelog(self.settings, self.names.state_changelog, numbers))
        log.info("resynced partitions %s from their committed offsets", sorted(numbers))

    def _stable_offsets(self, partitions: list[TopicPartition]) -> None:
        """Wait for the partitions' committed offsets to be stable. A broker
        restart can leave this worker's own last transaction open (its offsets
        pending) with nothing here to end it: after a transaction timeout,
        this worker fences its own id, which ends it, and waits again."""
        stable_wait = self.settings.worker.transaction_timeout_ms / 1000 + 5
        try:
            transient_retry(lambda: self.consumer.committed(partitions, stable_wait), stable_wait)
        except KafkaException as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "committed offsets not stable after %.0f s (%s): fencing this worker's own id",
                stable_wait,
                exc,
            )
            self.committer.fence_own()
            transient_retry(lambda: self.consumer.committed(partitions, TIMEOUT))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.committer.on_revoke()
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.committer.on_lost()
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        self._unsynced -= {(tp.topic, tp.partition) for tp in partitions}
        numbers = {tp.partition for tp in partitions}
        self.states.drop(numbers)
        metrics.ACTIVE.set(self.states.count_active())
        log.info("revoked partitions %s", sorted(numbers))

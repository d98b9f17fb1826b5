"""The orchestrator loop, on confluent-kafka (librdkafka): commands and phase
results in (co-partitioned), events, phase tasks and dead letters out.

Per batch of inputs the loop decodes, handles and writes; its committer
(`streams.orchestrator.committer`) holds the processing guarantee: what the
batch's outputs, state changes and offsets become, and when they are final.
An input that cannot be decoded or handled is dead-lettered, never retried:
it would block its partition.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from config import KafkaNames, Settings
from domain import Input, PhaseResult
from schemas import RecordError, decode_command, decode_result, encode
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letters import dead_letter
from streams.kafka.produce import produce
from streams.kafka.retrying import transient_retry
from streams.orchestrator import metrics
from streams.orchestrator.committer import Slot, committer_for
from streams.orchestrator.handling import Outcome, handle
from streams.orchestrator.state_store import StateStore, load_changelog

log = logging.getLogger(__name__)
BATCH = 500
TIMEOUT = 30.0


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class OrchestratorLoop:
    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings, self.stop = settings, stop
        self.names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        self.worker_id = settings.worker.id or uuid.uuid4().hex[:12]
        self.states = StateStore()
        self.consumer = clients.consumer(
            settings, self.names.orchestrator_group, **self._consumer_config()
        )
        self.committer = committer_for(
            settings, self.names, self.worker_id, self.consumer, self.states
        )
        self.producer = self.committer.producer

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
        }
        if self.settings.worker.id:
            # Static membership (KIP-345): a restarted instance takes its
            # partitions back at once, without waiting for a rebalance.
            extra["group.instance.id"] = self.names.transactional_id(self.worker_id)
        return extra

    def _loop(self) -> None:
        while not self.stop.is_set():
            msgs = [Consumed.of(m) for m in self._next_batch() if self._usable(m)]
            if msgs:
                self._batch(msgs)
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
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err)
        return False

    # --- one batch --------------------------------------------------------------------

    def _batch(self, msgs: Sequence[Consumed]) -> None:
        metrics.BATCH_INPUTS.observe(len(msgs))
        with self.committer.batch():
            for msg in msgs:
                self._one(msg)

    # --- one input --------------------------------------------------------------------

    def _one(self, msg: Consumed) -> None:
        self.committer.store_offset(msg)
        try:
            given = self._decode(msg)
        except RecordError as exc:
            self._dead_letter(msg, exc)
            return
        key = given.migration_id.encode()
        if msg.key != key:
            # Keyed otherwise (or not at all): on the wrong partition for this
            # migration. Re-key it so it is handled in order with the rest.
            produce(self.producer, msg.topic, key, msg.value, msg.headers)
            return
        slot: Slot = (msg.partition, given.migration_id)
        state = self.committer.state(slot)
        try:
            outcome = handle(state, given, now())
        except Exception as exc:  # a deterministic failure: never block the partition
            log.exception("input %s[%s]@%s failed", msg.topic, msg.partition, msg.offset)
            self._dead_letter(msg, exc)
            return
        self._count(given, outcome)
        self._write(key, outcome)
        if outcome.changed:
            self.committer.stage(slot, outcome.state)

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
        numbers = {tp.partition for tp in partitions}
        # With read_committed, this waits for a previous owner's open
        # transaction on these partitions to end (KIP-447 require_stable):
        # only then is the changelog complete up to the committed offsets.
        transient_retry(lambda: consumer.committed(partitions, TIMEOUT))
        self.states.adopt(load_changelog(self.settings, self.names.state_changelog, numbers))
        metrics.ACTIVE.set(self.states.count_active())
        log.info("assigned partitions %s", sorted(numbers))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.committer.on_revoke()
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.committer.on_lost()
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        self.states.drop(numbers)
        log.info("revoked partitions %s", sorted(numbers))

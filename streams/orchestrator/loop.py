"""The orchestrator's exactly-once loop, on confluent-kafka (librdkafka).

Per batch of inputs (commands and phase results, co-partitioned): one Kafka
transaction holds every event, phase task and changelog record the batch
causes, and the batch's input offsets (KIP-447: with the consumer group's
metadata, so a zombie whose partitions moved cannot commit). On an abortable
error the transaction is aborted, the batch's state changes are dropped and
the consumer rewinds; on a fatal one (fenced) the process stops.

With `processing_guarantee=at_least_once` the same loop runs without
transactions: outputs go out at once; state and offsets are committed every
commit interval, so a crash replays inputs and repeats their events.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from config import KafkaNames, Settings
from domain import Input, MigrationState, PhaseResult
from schemas import RecordError, decode_command, decode_result, encode
from streams.kafka.clients import consumer_config, producer_config
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letters import Origin, attempts_after, dead_letter_headers
from streams.kafka.retrying import transient_retry
from streams.orchestrator import metrics
from streams.orchestrator.faults import Faults
from streams.orchestrator.handling import Outcome, handle
from streams.orchestrator.state_store import StateStore, load_changelog, state_bytes

log = logging.getLogger(__name__)
BATCH = 500
TIMEOUT = 30.0
Overlay = dict[tuple[int, str], MigrationState]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class OrchestratorLoop:
    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings, self.stop = settings, stop
        self.names = KafkaNames(app_id=settings.app_id, prefix=settings.topic_prefix)
        self.worker_id = settings.worker_id or uuid.uuid4().hex[:12]
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.states = StateStore()
        self._dirty: Overlay = {}  # at-least-once: state not yet in the changelog
        self._positions: dict[tuple[str, int], int] = {}  # at-least-once: to commit
        self._last_commit = time.monotonic()
        self.faults = Faults(settings.fault, settings.fault_batch)
        self._gauged = 0.0

    # --- life cycle -------------------------------------------------------------------

    def run(self) -> None:
        if self.stop.is_set():
            return
        self.producer = Producer(self._producer_config())
        if self.exactly_once:
            self.producer.init_transactions(TIMEOUT)
        self.consumer = Consumer(self._consumer_config())
        self.consumer.subscribe(
            [self.names.commands, self.names.phase_results],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info("orchestrator %s started (%s)", self.worker_id, self.settings.processing_guarantee)
        try:
            self._loop()
        finally:
            self._shutdown()

    def _producer_config(self) -> dict[str, Any]:
        if not self.exactly_once:
            return producer_config(self.settings)
        return producer_config(
            self.settings,
            **{
                "transactional.id": self.names.transactional_id(self.worker_id),
                "transaction.timeout.ms": self.settings.transaction_timeout_ms,
            },
        )

    def _consumer_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            # range gives every member the same partition numbers of both input
            # topics: co-partitioning, the per-migration lock.
            "partition.assignment.strategy": "range",
            "session.timeout.ms": self.settings.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.settings.session_timeout_ms // 5),
        }
        if self.settings.worker_id:
            # Static membership (KIP-345): a restarted instance takes its
            # partitions back at once, without waiting for a rebalance.
            extra["group.instance.id"] = self.names.transactional_id(self.worker_id)
        return consumer_config(self.settings, self.names.orchestrator_group, **extra)

    def _loop(self) -> None:
        while not self.stop.is_set():
            msgs = [Consumed.of(m) for m in self._next_batch() if self._usable(m)]
            if msgs:
                self._batch(msgs)
            if not self.exactly_once:
                self._commit_if_due()

    def _next_batch(self) -> list[Message]:
        """Wait for the first input only, then take what is already fetched:
        a batch never waits for more input than there is."""
        first = self.consumer.poll(0.2)
        if first is None:
            return []
        return [first, *self.consumer.consume(BATCH - 1, 0)]

    def _shutdown(self) -> None:
        try:
            if not self.exactly_once:
                self._commit_now()
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
        if not self.exactly_once:
            overlay = self._apply(msgs)
            self._commit_states(overlay, later=True)
            return
        self.producer.begin_transaction()
        try:
            overlay = self._apply(msgs)
            self.faults.at("produce")
            with metrics.TXN_COMMIT.time():
                self.producer.send_offsets_to_transaction(
                    _next_offsets(msgs), self.consumer.consumer_group_metadata(), TIMEOUT
                )
                self.faults.at("offsets")
                self.producer.commit_transaction(TIMEOUT)
        except KafkaException as exc:
            self._abort(msgs, exc)
            return
        self.faults.at("commit")
        self._commit_states(overlay, later=False)

    def _apply(self, msgs: Sequence[Consumed]) -> Overlay:
        overlay: Overlay = {}
        for msg in msgs:
            self._one(msg, overlay)
        return overlay

    def _abort(self, msgs: Sequence[Consumed], exc: KafkaException) -> None:
        error: KafkaError = exc.args[0]
        if not error.txn_requires_abort():
            raise exc  # fatal: fenced or misconfigured; the process must stop
        log.warning("aborting transaction of %d inputs: %s", len(msgs), error)
        metrics.TXN_ABORTS.inc()
        self.producer.abort_transaction(TIMEOUT)
        for tp in _first_offsets(msgs):
            self.consumer.seek(tp)

    def _commit_states(self, overlay: Overlay, later: bool) -> None:
        for (partition, _), state in overlay.items():
            self.states.put(partition, state)
        if later:
            self._dirty.update(overlay)
        if time.monotonic() - self._gauged >= 1.0:  # a scan of every state: not per batch
            metrics.ACTIVE.set(self.states.count_active())
            self._gauged = time.monotonic()

    # --- one input --------------------------------------------------------------------

    def _one(self, msg: Consumed, overlay: Overlay) -> None:
        if not self.exactly_once:
            self._positions[(msg.topic, msg.partition)] = msg.offset + 1
        try:
            given = self._decode(msg)
        except RecordError as exc:
            self._dead_letter(msg, exc)
            return
        key = given.migration_id.encode()
        if msg.key != key:
            # Keyed otherwise (or not at all): on the wrong partition for this
            # migration. Re-key it so it is handled in order with the rest.
            self._send(msg.topic, key, msg.value, msg.headers)
            return
        slot = (msg.partition, given.migration_id)
        state = overlay.get(slot) or self.states.get(*slot)
        try:
            outcome = handle(state, given, now())
        except Exception as exc:  # a deterministic failure: never block the partition
            log.exception("input %s[%s]@%s failed", msg.topic, msg.partition, msg.offset)
            self._dead_letter(msg, exc)
            return
        self._count(given, outcome)
        self._write(msg.partition, key, outcome)
        if outcome.changed:
            overlay[slot] = outcome.state

    def _decode(self, msg: Consumed) -> Input:
        if msg.topic == self.names.commands:
            return decode_command(msg.value, msg.headers)
        return decode_result(msg.value, msg.headers)

    def _write(self, partition: int, key: bytes, outcome: Outcome) -> None:
        for event in outcome.events:
            self._send(self.names.events, key, *encode(event))
        for task in outcome.tasks:
            self._send(self.names.phase_tasks, key, *encode(task))
        if outcome.changed and self.exactly_once:
            self._send(self.names.state_changelog, key, state_bytes(outcome.state), [], partition)

    def _count(self, given: Input, outcome: Outcome) -> None:
        if not isinstance(given, PhaseResult):
            metrics.count_command(given.type, outcome.events)
        metrics.count_lifecycle(outcome.events)

    def _dead_letter(self, msg: Consumed, error: Exception) -> None:
        origin = Origin(msg.topic, msg.partition, msg.offset)
        log.warning("dead-lettering %s[%s]@%s: %s", *vars(origin).values(), error)
        attempts = attempts_after(msg.headers)  # one more than before a redrive
        headers = [*msg.headers, *dead_letter_headers(origin, error, now(), attempts)]
        dlq = self.names.dlq(msg.topic)
        self._send(dlq, msg.key, msg.value, headers)
        metrics.DLQ_WRITTEN.labels(dlq).inc()

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[Any],
        partition: int | None = None,
    ) -> None:
        while True:
            try:
                if partition is None:
                    self.producer.produce(topic, value, key, headers=headers)
                else:
                    self.producer.produce(topic, value, key, partition=partition, headers=headers)
                return
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.1)

    # --- at-least-once commits --------------------------------------------------------

    def _commit_if_due(self) -> None:
        if time.monotonic() - self._last_commit >= self.settings.commit_interval_seconds:
            self._commit_now()

    def _commit_now(self) -> None:
        for (partition, mid), state in self._dirty.items():
            self._send(self.names.state_changelog, mid.encode(), state_bytes(state), [], partition)
        self.producer.flush(TIMEOUT)
        if self._positions:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self._positions.items()]
            self.consumer.commit(offsets=offsets, asynchronous=False)
        self._dirty.clear()
        self._positions.clear()
        self._last_commit = time.monotonic()

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
        if not self.exactly_once:
            self._commit_now()
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._dirty.clear()
        self._positions.clear()
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        self.states.drop(numbers)
        log.info("revoked partitions %s", sorted(numbers))


def _next_offsets(msgs: Sequence[Consumed]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for m in msgs:
        last[(m.topic, m.partition)] = m.offset + 1
    return [TopicPartition(t, p, o) for (t, p), o in last.items()]


def _first_offsets(msgs: Sequence[Consumed]) -> list[TopicPartition]:
    first: dict[tuple[str, int], int] = {}
    for m in msgs:
        first.setdefault((m.topic, m.partition), m.offset)
    return [TopicPartition(t, p, o) for (t, p), o in first.items()]

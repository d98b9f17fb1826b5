"""The orchestrator's processing guarantee, as an object.

The loop consumes, decodes, handles and writes; around each batch of inputs
it opens `committer.batch()`, stores each input's offset, reads states and
stages their changes through the committer. The committer alone knows what
the outputs, state changes and offsets of a batch become, and when:

- `ExactlyOnceCommitter`: one Kafka transaction per batch holds every output,
  the changelog record of every migration the batch changed (its last state,
  or a tombstone and its retired-id chunk when it was retired), and the
  batch's input offsets
  (KIP-447: with the consumer group's metadata, so a zombie whose partitions
  moved cannot commit). On an abortable error the transaction is aborted, the
  batch's state changes are dropped and the consumer rewinds to the batch's
  first offsets. When the transaction is lost otherwise (a retriable error
  past its patience while a broker restarts, a transaction the broker timed
  out, a fatal producer error), a fresh producer under the same
  transactional id fences the old one, and the loop re-reads the committed
  offsets and states of its partitions (`on_renewed`): the batch is decided
  again from what Kafka holds, whether or not its commit got through. Renewal
  is bounded (`RENEWALS` in `RENEWAL_WINDOW` seconds), and fencing by a newer
  instance is never renewed: the error is raised and the process exits.
- `AtLeastOnceCommitter`: outputs go out at once; state changes (to the
  changelog) and offsets are committed every commit interval, and before
  partitions are revoked, so a crash replays inputs and repeats their events.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from config import KafkaNames, Settings
from domain import MigrationState
from streams.kafka import clients
from streams.kafka.consumed import Consumed
from streams.kafka.errors import TransactionAborted
from streams.kafka.produce import produce
from streams.kafka.transaction import Transactions, fenced
from streams.orchestrator import metrics
from streams.orchestrator.faults import Faults
from streams.orchestrator.state_store import Slot, StateStore, state_bytes

log = logging.getLogger(__name__)
TIMEOUT = 30.0
# A transactional call's own timeout: one transaction timeout. A call that
# times out is retried (streams.kafka.transaction); one that overruns it by the
# watchdog's grace is hung (librdkafka#5456, #5511) and ends the process.
CALL_TIMEOUT = 10.0
RENEWALS, RENEWAL_WINDOW = 5, 300.0
Position = tuple[str, int]  # (topic, partition)


def committer_for(
    settings: Settings, names: KafkaNames, worker_id: str, consumer: Consumer, states: StateStore
) -> Committer:
    """The committer of the configured guarantee, with its producer."""
    if settings.worker.processing_guarantee == "exactly_once":

        def new_producer() -> Producer:
            return clients.transactional_producer(
                settings,
                names.transactional_id(worker_id),
                **{"transaction.timeout.ms": settings.worker.transaction_timeout_ms},
            )

        faults = Faults(settings.fault.worker, settings.fault.worker_batch)
        return ExactlyOnceCommitter(new_producer, consumer, states, names.state_changelog, faults)
    interval = settings.worker.commit_interval_seconds
    return AtLeastOnceCommitter(
        clients.producer(settings), consumer, states, names.state_changelog, interval
    )


class Committer(ABC):
    """Stages a batch's state changes over the store; subclasses decide when
    outputs, changes and offsets become final."""

    def __init__(
        self, producer: Producer, consumer: Consumer, states: StateStore, changelog: str
    ) -> None:
        self.producer, self.consumer = producer, consumer
        self.states, self.changelog = states, changelog
        self._staged: dict[Slot, MigrationState] = {}
        self._gauged = 0.0
        # Set by the loop: re-read the committed offsets and states (the producer was renewed).
        self.on_renewed: Callable[[], None] = lambda: None

    @abstractmethod
    def start(self) -> None:
        """Before the first batch (the consumer not yet subscribed)."""

    @abstractmethod
    def batch(self) -> AbstractContextManager[None]:
        """The context of one batch of inputs."""

    @abstractmethod
    def store_offset(self, msg: Consumed) -> None:
        """`msg` is consumed: its offset is to be committed with the batch."""

    def state(self, slot: Slot) -> MigrationState:
        """The migration's state, with the changes this batch staged."""
        return self._staged.get(slot) or self.states.get(*slot)

    def stage(self, slot: Slot, state: MigrationState) -> None:
        self._staged[slot] = state

    @abstractmethod
    def tick(self) -> None:
        """Between batches (or polls that found nothing)."""

    @abstractmethod
    def close(self) -> None:
        """On shutdown, before the consumer leaves the group."""

    @abstractmethod
    def on_revoke(self) -> None:
        """Partitions are about to move to another member."""

    @abstractmethod
    def on_lost(self) -> None:
        """Partitions were lost (this member was thrown out of the group)."""

    def fence_own(self) -> None:
        """End whatever transaction this worker's id may have left open (the
        committed offsets wait for it); nothing to do without transactions."""
        return None

    def _keep_staged(self) -> dict[Slot, MigrationState]:
        """The batch's staged states into the store; returns them."""
        staged, self._staged = self._staged, {}
        for (partition, _), state in staged.items():
            self.states.put(partition, state)
        metrics.ACTIVE.set(self.states.count_active())  # kept counts: no scan
        if time.monotonic() - self._gauged >= 1.0:  # a scan of every state: not per batch
            metrics.gauge_live(self.states)
            self._gauged = time.monotonic()
        return staged

    def _write_changes(self, changes: dict[Slot, MigrationState], applied: bool) -> set[int]:
        """Each changed migration's changelog record (a retired one's: a
        tombstone), then the retired-id chunks of the partitions that retired
        any: with the retirements in `changes` added unless the store already
        holds them (`applied`). Returns those partitions."""
        retiring: dict[int, list[tuple[str, int]]] = {}
        for (partition, migration_id), state in changes.items():
            value = None if state.retired else state_bytes(state)
            produce(self.producer, self.changelog, migration_id.encode(), value, [], partition)
            if state.retired:
                retiring.setdefault(partition, []).append((migration_id, state.version))
        for partition, extra in retiring.items():
            for key, chunk in self.states.retired_records(partition, () if applied else extra):
                produce(self.producer, self.changelog, key, chunk, [], partition)
        return set(retiring)


class ExactlyOnceCommitter(Committer):
    """One transaction per batch: outputs, changelog and offsets, or none of them."""

    def __init__(
        self,
        new_producer: Callable[[], Producer],
        consumer: Consumer,
        states: StateStore,
        changelog: str,
        faults: Faults,
    ) -> None:
        super().__init__(new_producer(), consumer, states, changelog)
        self.new_producer, self.faults = new_producer, faults
        self.transactions = Transactions(self.producer, CALL_TIMEOUT)
        self._renewed: list[float] = []
        self._first: dict[Position, int] = {}
        self._next: dict[Position, int] = {}
        self._inputs = 0
        self._retiring: set[int] = set()

    def start(self) -> None:
        self.transactions.init()  # fences this worker id's previous instance

    def tick(self) -> None:
        return None  # every batch commits itself

    def close(self) -> None:
        return None  # nothing is left uncommitted between batches

    def on_revoke(self) -> None:
        return None  # likewise: revocation happens between batches

    def on_lost(self) -> None:
        return None  # likewise: nothing is staged between batches

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._first, self._next, self._staged, self._inputs = {}, {}, {}, 0
        self._retiring = set()
        try:
            with self.transactions.open():
                yield
                self._commit()
        except TransactionAborted as exc:
            self._rewind(exc)
            return
        except KafkaException as exc:
            self._renew(exc)
            return
        self.faults.at("commit")
        self._keep_staged()
        for partition in self._retiring:
            self.states.retired_written(partition)

    def store_offset(self, msg: Consumed) -> None:
        at = (msg.topic, msg.partition)
        self._first.setdefault(at, msg.offset)
        self._next[at] = msg.offset + 1
        self._inputs += 1

    def _commit(self) -> None:
        # Once per changed migration, its last state: in the batch's transaction.
        self._retiring = self._write_changes(self._staged, applied=False)
        self.faults.at("produce")
        with metrics.TXN_COMMIT.time():
            self.transactions.commit(
                _offsets(self._next) or None,  # none: a batch of retirements only
                self.consumer.consumer_group_metadata(),
                offsets_sent=lambda: self.faults.at("offsets"),
            )

    def _renew(self, lost: KafkaException) -> None:
        """The transaction's outcome is unknown or the producer is done: a
        fresh producer fences the old one, and the loop resyncs."""
        now = time.monotonic()
        self._renewed = [t for t in self._renewed if now - t < RENEWAL_WINDOW] + [now]
        if fenced(lost) or len(self._renewed) > RENEWALS:
            raise lost
        log.warning("transaction of %d inputs lost (%s); renewing the producer", self._inputs, lost)
        metrics.PRODUCERS_RENEWED.inc()
        self._staged = {}
        self.producer.purge()
        self.producer = self.new_producer()
        self.transactions = Transactions(
            self.producer, CALL_TIMEOUT, watchdog=self.transactions.watchdog
        )
        self.transactions.init()  # waits for the old producer's transaction to end
        self.on_renewed()

    def _rewind(self, aborted: TransactionAborted) -> None:
        """Nothing of the batch happened: forget its states, read it again."""
        log.warning("aborted the transaction of %d inputs: %s", self._inputs, aborted.args[0])
        metrics.TXN_ABORTS.inc()
        self._staged = {}
        for tp in _offsets(self._first):
            self.consumer.seek(tp)


class AtLeastOnceCommitter(Committer):
    """Outputs at once; changelog and offsets every `interval` seconds."""

    def __init__(
        self,
        producer: Producer,
        consumer: Consumer,
        states: StateStore,
        changelog: str,
        interval: float,
    ) -> None:
        super().__init__(producer, consumer, states, changelog)
        self.interval = interval
        self._dirty: dict[Slot, MigrationState] = {}  # not yet in the changelog
        self._positions: dict[Position, int] = {}  # not yet committed
        self._last_commit = time.monotonic()

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._staged = {}
        yield
        self._dirty.update(self._keep_staged())

    def store_offset(self, msg: Consumed) -> None:
        self._positions[(msg.topic, msg.partition)] = msg.offset + 1

    def start(self) -> None:
        return None  # no transactions to fence

    def tick(self) -> None:
        metrics.ACTIVE.set(self.states.count_active())
        if time.monotonic() - self._last_commit >= self.interval:
            self._commit()

    def close(self) -> None:
        self._commit()

    def on_revoke(self) -> None:
        self._commit()

    def on_lost(self) -> None:
        self._dirty.clear()
        self._positions.clear()

    def _commit(self) -> None:
        retiring = self._write_changes(self._dirty, applied=True)
        self.producer.flush(TIMEOUT)
        for partition in retiring:
            self.states.retired_written(partition)
        if self._positions:
            self.consumer.commit(offsets=_offsets(self._positions), asynchronous=False)
        self._dirty.clear()
        self._positions.clear()
        self._last_commit = time.monotonic()


def _offsets(positions: dict[Position, int]) -> list[TopicPartition]:
    return [TopicPartition(t, p, o) for (t, p), o in positions.items()]

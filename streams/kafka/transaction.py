"""Kafka transactions of one confluent-kafka producer: the one place that
begins, commits and aborts them.

A transaction holds records, and (KIP-447) the consumed offsets with the
consumer group's metadata, so a zombie whose partitions moved cannot commit.
When a call inside it fails, Kafka says what the error means:

- abortable (`txn_requires_abort`): the transaction is aborted, nothing of
  it becomes visible, and `TransactionAborted` (a KafkaException carrying the
  same KafkaError) tells the caller to rewind or retry;
- anything else is fatal (fenced by a newer instance with the same
  transactional id, misconfigured): raised unchanged; the producer is done.

Every librdkafka transactional call goes through `Transactions._call`: a
guard against a call that never returns belongs there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from streams.kafka.errors import TransactionAborted

log = logging.getLogger(__name__)
TIMEOUT = 30.0
T = TypeVar("T")


class Transactions:
    """The transactions of one transactional producer, one at a time."""

    def __init__(self, producer: Producer, timeout: float = TIMEOUT) -> None:
        self.producer, self.timeout = producer, timeout

    def init(self) -> None:
        """Register the transactional id: fences (aborts) an earlier producer's
        open transaction under the same id. Once, before the first `open`."""
        self._call(self.producer.init_transactions, self.timeout)

    @contextmanager
    def open(self) -> Iterator[None]:
        """Begin a transaction; end it with `commit` inside the block. A
        KafkaException inside aborts it when Kafka allows, else is re-raised."""
        self._call(self.producer.begin_transaction)
        try:
            yield
        except KafkaException as exc:
            self._abort(exc)

    def commit(
        self,
        offsets: Sequence[TopicPartition] | None = None,
        group_metadata: Any = None,
        *,
        offsets_sent: Callable[[], None] = lambda: None,
    ) -> None:
        """Commit; with `offsets`, they commit as part of it (the consumer's
        `consumer_group_metadata()` fences zombies). `offsets_sent` runs in between."""
        if offsets is not None:
            self._call(
                self.producer.send_offsets_to_transaction,
                list(offsets),
                group_metadata,
                self.timeout,
            )
            offsets_sent()
        self._call(self.producer.commit_transaction, self.timeout)

    def _abort(self, exc: KafkaException) -> NoReturn:
        error = exc.args[0] if exc.args else None
        if not (isinstance(error, KafkaError) and error.txn_requires_abort()):
            raise exc  # fatal: fenced or misconfigured; the process must stop
        self._call(self.producer.abort_transaction, self.timeout)
        raise TransactionAborted(error) from exc

    def _call(self, call: Callable[..., T], *args: Any) -> T:
        return call(*args)

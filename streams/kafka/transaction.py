"""Kafka transactions of one confluent-kafka producer: the one place that
begins, commits and aborts them.

A transaction holds records, and (KIP-447) the consumed offsets with the
consumer group's metadata, so a zombie whose partitions moved cannot commit.
When a call inside it fails, Kafka says what the error means:

- abortable (`txn_requires_abort`): the transaction is aborted, nothing of
  it becomes visible, and `TransactionAborted` (a KafkaException carrying the
  same KafkaError) tells the caller to rewind or retry;
- retriable (a coordinator moving or away, `_TIMED_OUT` while a broker
  restarts): the same call is made again, with backoff, for up to `patience`
  seconds (librdkafka allows it); then it is raised;
- anything else is fatal (fenced by a newer instance with the same
  transactional id, misconfigured, or a transaction the broker timed out):
  raised unchanged; the producer is done, and `fenced(exc)` says whether a
  newer instance took over (the process must stop) or a fresh producer under
  the same id may go on.

Every librdkafka transactional call goes through `Transactions._call`, under
the watchdog (`streams.kafka.watchdog`): a call that never returns ends the
process instead of hanging it and its consumer group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

from streams.kafka.errors import TransactionAborted
from streams.kafka.watchdog import Watchdog

log = logging.getLogger(__name__)
TIMEOUT = 30.0
PATIENCE = 120.0  # how long retriable errors are retried: beyond a broker restart
T = TypeVar("T")
FENCING = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.FENCED_INSTANCE_ID})


def kafka_error(exc: BaseException) -> KafkaError | None:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return error if isinstance(error, KafkaError) else None


def retriable(exc: BaseException) -> bool:
    """The call may simply be made again (not fatal, nothing to abort)."""
    error = kafka_error(exc)
    return bool(
        error is not None
        and error.retriable()
        and not error.fatal()
        and not error.txn_requires_abort()
    )


def fenced(exc: BaseException) -> bool:
    """A newer instance under the same id (or group instance id) took over."""
    error = kafka_error(exc)
    return error is not None and error.code() in FENCING


class Transactions:
    """The transactions of one transactional producer, one at a time."""

    def __init__(
        self,
        producer: Producer,
        timeout: float = TIMEOUT,
        *,
        patience: float = PATIENCE,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.producer, self.timeout, self.patience = producer, timeout, patience
        self.watchdog = watchdog or Watchdog()

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
        error = kafka_error(exc)
        if error is None or not error.txn_requires_abort():
            raise exc  # fatal, or retriable past patience: the caller decides
        self._call(self.producer.abort_transaction, self.timeout)
        raise TransactionAborted(error) from exc

    def _call(self, call: Callable[..., T], *args: Any) -> T:
        name = getattr(call, "__name__", "a transactional call")

        def once() -> T:
            with self.watchdog.watching(name, self.timeout):
                return call(*args)

        def retrying(state: Any) -> None:
            log.warning("%s: %s; trying again", name, state.outcome.exception())

        again = retry(
            retry=retry_if_exception(retriable),
            wait=wait_random_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(self.patience),
            before_sleep=retrying,
            reraise=True,
        )
        return again(once)()

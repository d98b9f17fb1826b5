"""Errors the Kafka edge raises, in the product's one tree (domain.errors)."""

from __future__ import annotations

from confluent_kafka import KafkaException

from domain.errors import MigratorError, NotFound

__all__ = ["NoSuchTopic", "ProduceQueueFull", "TransactionAborted"]


class NoSuchTopic(NotFound):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist")
        self.topic = topic


class ProduceQueueFull(MigratorError, BufferError):
    """The producer's local queue stayed full: deliveries are not draining."""

    retriable = True
    status = 503


class TransactionAborted(MigratorError, KafkaException):
    """The open transaction was aborted after an abortable error (`args[0]`,
    the KafkaError); its inputs are read again. Still a KafkaException, so the
    handlers of Kafka errors see it too."""

    retriable = True
    status = 503

"""The Kafka edge against the real broker: `produce` rides out a full local
queue; a transaction is aborted on an abortable error (nothing of it is
visible) and a fatal error (fenced) is raised as it is."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException

from config import Settings
from config.names import TopicSpec
from streams.kafka import clients
from streams.kafka.errors import TransactionAborted
from streams.kafka.produce import produce
from streams.kafka.reader import read_committed
from streams.kafka.topics import ensure_topic
from streams.kafka.transaction import Transactions

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(settings: Settings) -> str:
    name = f"{settings.kafka.topic_prefix}edge"
    ensure_topic(settings, TopicSpec(name, 1))
    return name


def values(settings: Settings, topic: str) -> list[bytes | None]:
    return [r.value for r in read_committed(settings, topic, timeout=30)]


def test_produce_waits_for_room_in_a_full_queue(settings: Settings, topic: str) -> None:
    producer = clients.producer(settings, **{"queue.buffering.max.messages": 1})

    for i in range(30):  # each record waits for the one before it to be delivered
        produce(producer, topic, b"k", str(i).encode(), [("h", b"v")])

    assert producer.flush(30) == 0
    assert values(settings, topic) == [str(i).encode() for i in range(30)]


def test_an_abortable_error_aborts_the_transaction(settings: Settings, topic: str) -> None:
    transactions = Transactions(clients.transactional_producer(settings, uuid.uuid4().hex))
    transactions.init()
    abortable = KafkaError(KafkaError._STATE, "injected", txn_requires_abort=True)

    with pytest.raises(TransactionAborted) as aborted, transactions.open():
        produce(transactions.producer, topic, b"k", b"aborted", [])
        raise KafkaException(abortable)
    with transactions.open():
        produce(transactions.producer, topic, b"k", b"committed", [])
        transactions.commit()

    assert aborted.value.args[0].str() == "injected"
    assert values(settings, topic) == [b"committed"]


def test_a_fenced_producer_is_told_so_unchanged(settings: Settings, topic: str) -> None:
    transactional_id = uuid.uuid4().hex
    zombie = Transactions(clients.transactional_producer(settings, transactional_id))
    zombie.init()
    Transactions(clients.transactional_producer(settings, transactional_id)).init()

    with pytest.raises(KafkaException) as raised, zombie.open():
        produce(zombie.producer, topic, b"k", b"zombie", [])
        zombie.commit()

    assert not isinstance(raised.value, TransactionAborted)
    assert raised.value.args[0].fatal()
    assert values(settings, topic) == []
    zombie.producer.purge()  # its record is never delivered

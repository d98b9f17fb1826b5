"""Producing on a full local queue: drained while deliveries go on, a clear
error once they have stopped (a real producer whose cluster is unreachable)."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from streams.kafka.errors import ProduceQueueFull
from streams.kafka.produce import produce


def test_a_queue_that_stays_full_raises_a_clear_error_after_the_bound() -> None:
    producer = Producer(
        {
            "bootstrap.servers": "127.0.0.1:1",  # nothing listens: nothing is delivered
            "queue.buffering.max.messages": 1,
            "message.timeout.ms": 60_000,
            "log_level": 0,
        }
    )
    produce(producer, "t", b"k", b"first", [])  # fills the queue

    with pytest.raises(ProduceQueueFull, match=r"queue has stayed full for 0\.5 s"):
        produce(producer, "t", b"k", b"second", [], wait=0.5)

    assert len(producer) == 1
    producer.purge()

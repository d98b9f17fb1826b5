"""Publish records with confluent-kafka's idempotent producer, awaitably.

librdkafka reports deliveries from `poll()`; a small owned thread polls and
hands each result back to the event loop, so nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message

from config import Settings
from streams.kafka import clients


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._producer = clients.producer(settings)
        self._running = True
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._thread.start()

    async def publish(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Position:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Position] = loop.create_future()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, err, msg)

        self._producer.produce(topic, value, key, headers=list(headers), on_delivery=delivered)
        return await done

    async def check(self, topic: str, seconds: float) -> None:
        """Raise unless the broker answers with `topic`'s metadata within `seconds`."""
        metadata = await asyncio.to_thread(self._producer.list_topics, topic, seconds)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise KafkaException(found.error if found else f"topic {topic} unknown")

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(0.1)

    async def close(self, flush_seconds: float = 10.0) -> None:
        await asyncio.to_thread(self._producer.flush, flush_seconds)
        self._running = False
        await asyncio.to_thread(self._thread.join, 2.0)
        # closed, not left to the garbage collector: an app object outliving
        # its broker would otherwise keep reconnecting (and logging) meanwhile
        await asyncio.to_thread(self._producer.close)


def _settle(done: asyncio.Future[Position], err: KafkaError | None, msg: Message) -> None:
    if done.done():
        return
    if err is not None:
        done.set_exception(KafkaException(err))
    else:
        done.set_result(
            Position(str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))
        )

"""Publish records with confluent-kafka's idempotent producer, awaitably.

librdkafka reports deliveries from `poll()`; a small owned thread polls and
hands each result back to the event loop, so nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message

from config import Settings
from streams.kafka import clients, tracing


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._producer = clients.producer(settings)
        self._running = True
        self._checker = ThreadPoolExecutor(1, thread_name_prefix="kafka-check")
        self._checks: dict[str, asyncio.Future[None]] = {}
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._thread.start()

    async def publish(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Position:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Position] = loop.create_future()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, err, msg)

        traced = tracing.injected(headers)
        self._producer.produce(topic, value, key, headers=list(traced), on_delivery=delivered)
        return await done

    async def check(self, topic: str, seconds: float) -> None:
        """Raise unless the broker answers with `topic`'s metadata within `seconds`.
        The probes' own path: a thread no other work queues on, and checks
        asked for at once share one answer, however many clients ask."""
        running = self._checks.get(topic)
        if running is None or running.done():
            running = self._checks[topic] = asyncio.ensure_future(self._check(topic, seconds))
            running.add_done_callback(_retrieved)
        await asyncio.shield(running)

    async def _check(self, topic: str, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        metadata = await loop.run_in_executor(
            self._checker, self._producer.list_topics, topic, seconds
        )
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
        self._checker.shutdown(wait=False, cancel_futures=True)
        # closed, not left to the garbage collector: an app object outliving
        # its broker would otherwise keep reconnecting (and logging) meanwhile
        await asyncio.to_thread(self._producer.close)


def _retrieved(check: asyncio.Future[None]) -> None:
    """A check's error is its waiters' to handle; when they have all gone, it is dropped."""
    if not check.cancelled():
        check.exception()


def _settle(done: asyncio.Future[Position], err: KafkaError | None, msg: Message) -> None:
    if done.done():
        return
    if err is not None:
        done.set_exception(KafkaException(err))
    else:
        done.set_result(
            Position(str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))
        )

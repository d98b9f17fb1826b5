"""A worker whose consumer is fenced (another member took its static
group.instance.id) stops with the error instead of polling a dead consumer
forever; its supervisor then restarts it (exit status 3)."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from config import KafkaNames, Settings
from streams.kafka import clients
from streams.orchestrator.loop import OrchestratorLoop

pytestmark = pytest.mark.integration


def test_a_fenced_consumer_stops_the_loop(settings: Settings, topics: KafkaNames) -> None:
    mine = settings.replace(worker={"id": "w-twin", "session_timeout_ms": 6000})
    loop = OrchestratorLoop(mine, threading.Event())
    raised: list[BaseException] = []

    def run() -> None:
        try:
            loop.run()
        except BaseException as exc:  # what ends the loop is the point of the test
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 60
    while not loop.consumer.assignment() and time.monotonic() < deadline:
        time.sleep(0.2)
    twin = clients.consumer(
        settings,
        topics.orchestrator_group,
        **{"group.instance.id": topics.transactional_id("w-twin"), "log_level": 2},
    )
    twin.subscribe([topics.commands])
    try:
        while worker.is_alive() and time.monotonic() < deadline + 60:
            twin.poll(0.2)
    finally:
        twin.close()
    loop.stop.set()
    worker.join(30)

    assert not worker.is_alive()
    assert raised and isinstance(raised[0], KafkaException), raised
    assert raised[0].args[0].code() == KafkaError._FATAL

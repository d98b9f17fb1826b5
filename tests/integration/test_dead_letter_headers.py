"""Dead-letter headers against the real broker, as a plain Kafka consumer
(Spring's tooling, say) reads them: the `kafka_dlt-*` numbers are big-endian
binary and true even when the original record carried imitations of them,
and a forged attempt count raises nothing, neither in the dead letter nor
when it is redriven and fails again."""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from config import KafkaNames, Settings
from tests.support.dead_letters import json_lines, migrator
from tests.support.processes import Processes, eventually, group_is_stable

pytestmark = pytest.mark.integration
Headers = list[tuple[str, str | bytes | None]]

IMITATIONS: Headers = [
    ("migrator-attempts", b"999"),
    ("kafka_dlt-attempts", b"999"),
    ("migrator-redrive-attempts", b"999"),
    ("kafka_dlt-original-offset", struct.pack(">q", 123_456)),
    ("kafka_dlt-original-partition", struct.pack(">i", 7)),
    ("kafka_dlt-original-timestamp", struct.pack(">q", 42)),
]
SPRING_NUMBERS = {
    "kafka_dlt-original-partition": ">i",
    "kafka_dlt-original-offset": ">q",
    "kafka_dlt-original-timestamp": ">q",
}


def test_a_record_with_imitation_headers_is_dead_lettered_and_redriven_with_the_truth(
    settings: Settings, topics: KafkaNames, tmp_path: Path
) -> None:
    dlq = topics.dlq(topics.commands)
    forged_redrive: Headers = [
        ("migrator-redrive-attempts", b"999"),
        ("migrator-redriven-from", b"x/0/9"),
    ]
    reader = _PlainReader(settings, dlq)
    procs = Processes(settings, tmp_path)
    procs.start("worker")
    try:
        eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
        imitated = _send(settings, topics.commands, b"m-1", [("trace", b"t-1"), *IMITATIONS])
        redrive_claimed = _send(settings, topics.commands, b"m-2", forged_redrive)
        first = {m.key(): _headers(m) for m in eventually(lambda: reader.read(2))}
        listed = _list(settings, topics)
        redriven = migrator(settings, "dlq", "redrive", topics.commands, "--all")
        sent_back = json.loads(redriven[1])["redriven"] if redriven[0] == 0 else 0
        again = [_headers(m) for m in eventually(lambda: reader.read(2 + sent_back))[2:]]
        relisted = _list(settings, topics)
    finally:
        reader.close()
        assert procs.stop_all() == {"worker": 0}

    for sent in (imitated, redrive_claimed):
        headers = first[sent.key()]
        assert {name: _unpack(headers, name) for name in SPRING_NUMBERS} == {
            "kafka_dlt-original-partition": sent.partition(),
            "kafka_dlt-original-offset": sent.offset(),
            "kafka_dlt-original-timestamp": sent.timestamp()[1],
        }
        assert headers["kafka_dlt-original-timestamp-type"] == [b"CreateTime"]
        assert headers["kafka_dlt-original-topic"] == [topics.commands.encode()]
        assert headers["kafka_dlt-original-consumer-group"] == [settings.kafka.app_id.encode()]
    kept = first[b"m-1"]
    assert kept["migrator-attempts"] == [b"1"]
    assert kept["migrator-original-header-migrator-attempts"] == [b"999"]
    assert kept["migrator-original-header-kafka_dlt-original-offset"] == [
        struct.pack(">q", 123_456)
    ]
    assert "migrator-redrive-attempts" not in kept
    assert {r["key"]: r["attempts"] for r in listed} == {"m-1": 1, "m-2": 1}
    assert (redriven[0], sent_back) == (0, 2), redriven[2]
    assert sorted(h["migrator-attempts"] for h in again) == [[b"2"], [b"2"]]
    assert Counter(r["attempts"] for r in relisted) == {1: 2, 2: 2}


def _send(settings: Settings, topic: str, key: bytes, headers: Headers) -> Message:
    """One undecodable command; the record as delivered (partition, offset, timestamp)."""
    delivered: list[Message] = []
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    timestamp = int(time.time() * 1000) - 60_000  # not the broker's clock: the record's own
    producer.produce(
        topic, b"not json", key, headers=headers, timestamp=timestamp,
        on_delivery=lambda error, msg: delivered.append(msg) if error is None else None,
    )  # fmt: skip
    assert producer.flush(30) == 0 and len(delivered) == 1
    assert delivered[0].timestamp()[1] == timestamp
    return delivered[0]


class _PlainReader:
    """A plain consumer of every partition of a topic, read_committed, from the start."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "group.id": f"plain-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        partitions = range(settings.kafka.topic_partitions)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.read_so_far: list[Message] = []

    def read(self, count: int) -> list[Message] | None:
        """The records read so far, in the order read, once there are `count`."""
        while (msg := self.consumer.poll(0.5)) is not None:
            if msg.error() is None:
                self.read_so_far.append(msg)
        return self.read_so_far if len(self.read_so_far) >= count else None

    def close(self) -> None:
        self.consumer.close()


def _headers(msg: Message) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    raw = msg.headers() or []
    for name, value in raw.items() if isinstance(raw, dict) else raw:
        found.setdefault(name, []).append(value if isinstance(value, bytes) else b"")
    return found


def _unpack(headers: dict[str, list[bytes]], name: str) -> int:
    (value,) = headers[name]  # the real one only: the imitation went under another name
    (number,) = struct.unpack(SPRING_NUMBERS[name], value)
    return int(number)


def _list(settings: Settings, topics: KafkaNames) -> list[dict[str, object]]:
    code, out, err = migrator(settings, "dlq", "list", topics.commands, "--json")
    assert code == 0, err
    return json_lines(out)

"""Read any topic of the contract as JSON lines (read_committed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from config import KafkaNames, Settings
from schemas import RecordError, decode_command, decode_event, decode_result, decode_task
from streams.consumed import Consumed

Decoder = Callable[[bytes | None, Any], Any]


def decoder_for(names: KafkaNames, topic: str) -> Decoder | None:
    """How to decode a topic's records (None: show the raw bytes, e.g. a DLQ)."""
    known: dict[str, Decoder] = {
        names.commands: decode_command,
        names.phase_results: decode_result,
        names.events: decode_event,
        names.phase_tasks: decode_task,
    }
    return known.get(topic)


def render(record: Consumed, decode: Decoder | None) -> str:
    line: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "key": (record.key or b"").decode(errors="replace"),
    }
    try:
        if decode is None:
            raise RecordError("raw")
        line["value"] = asdict(decode(record.value, record.headers))
    except RecordError as exc:
        line["value"] = (record.value or b"").decode(errors="replace")
        line["headers"] = {k: (v or b"").decode(errors="replace") for k, v in record.headers}
        if str(exc) != "raw":
            line["error"] = str(exc)
    return json.dumps(line, default=str)


def tail(settings: Settings, topic: str, from_beginning: bool, follow: bool) -> Iterator[str]:
    names = KafkaNames(app_id=settings.app_id, prefix=settings.topic_prefix)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"tail-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            raise SystemExit(f"topic {topic}: {meta.error.str()}")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in meta.partitions])
        yield from _read(consumer, len(meta.partitions), decoder_for(names, topic), follow)
    finally:
        consumer.close()


def _read(
    consumer: Consumer, partitions: int, decode: Decoder | None, follow: bool
) -> Iterator[str]:
    at_end: set[int] = set()
    while follow or len(at_end) < partitions:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                at_end.add(int(msg.partition() or 0))
                continue
            raise SystemExit(f"consumer error: {error.str()}")
        yield render(Consumed.of(msg), decode)

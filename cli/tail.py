"""Read any topic of the contract as JSON lines (read_committed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from confluent_kafka import KafkaException

from config import KafkaNames, Settings
from schemas import RecordError, decode_command, decode_event, decode_result, decode_task
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letter_headers import shown
from streams.kafka.reader import read_committed

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
        value = decode(record.value, record.headers)
        line["value"] = {**asdict(value), "type": value.type}
    except RecordError as exc:
        line["value"] = (record.value or b"").decode(errors="replace")
        line["headers"] = shown(record.headers)
        if str(exc) != "raw":
            line["error"] = str(exc)
    return json.dumps(line, default=str)


def tail(settings: Settings, topic: str, from_beginning: bool, follow: bool) -> Iterator[str]:
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    decode = decoder_for(names, topic)
    try:
        records = read_committed(settings, topic, from_beginning=from_beginning, follow=follow)
        for record in records:
            yield render(record, decode)
    except KafkaException as exc:
        raise SystemExit(f"topic {topic}: {exc}") from exc

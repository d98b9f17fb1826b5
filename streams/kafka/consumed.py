"""A consumed Kafka record with plain types (librdkafka's Message is all Optional)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Message

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @classmethod
    def of(cls, msg: Message) -> Consumed:
        raw = msg.headers() or []
        headers: Headers = [
            (k, v.encode() if isinstance(v, str) else v)
            for k, v in (raw.items() if isinstance(raw, dict) else raw)
        ]
        return cls(
            str(msg.topic()),
            int(msg.partition() or 0),
            int(msg.offset() or 0),
            msg.key(),
            msg.value(),
            headers,
        )

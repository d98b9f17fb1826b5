"""A consumed Kafka record with plain types (librdkafka's Message is all Optional)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Message

Headers = list[tuple[str, bytes | None]]
NO_TIMESTAMP = -1
# librdkafka's timestamp types, as Kafka (and aiokafka) number them
KAFKA_TIMESTAMP_TYPE = {TIMESTAMP_CREATE_TIME: 0, TIMESTAMP_LOG_APPEND_TIME: 1}


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int = NO_TIMESTAMP  # epoch ms
    timestamp_type: int = NO_TIMESTAMP  # as Kafka numbers it: 0 CreateTime, 1 LogAppendTime

    @classmethod
    def of(cls, msg: Message) -> Consumed:
        raw = msg.headers() or []
        headers: Headers = [
            (k, v.encode() if isinstance(v, str) else v)
            for k, v in (raw.items() if isinstance(raw, dict) else raw)
        ]
        kind, timestamp = msg.timestamp()
        known = kind in KAFKA_TIMESTAMP_TYPE
        return cls(
            str(msg.topic()),
            int(msg.partition() or 0),
            int(msg.offset() or 0),
            msg.key(),
            msg.value(),
            headers,
            timestamp if known else NO_TIMESTAMP,
            KAFKA_TIMESTAMP_TYPE.get(kind, NO_TIMESTAMP),
        )

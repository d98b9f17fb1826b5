"""Drive many migrations through their life cycles and react to their events,
as operators would: resume what paused, retry what failed."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from config import KafkaNames, Settings
from domain import (
    CancelMigration,
    Command,
    MigrationSpec,
    PauseMigration,
    ResumeMigration,
    RetryMigration,
    StartMigration,
)
from schemas import decode_event, encode
from streams.kafka.clients import consumer_config
from streams.kafka.consumed import Consumed

KINDS = ("plain", "pause", "cancel", "flaky", "invalid")
EXPECTED = {
    "plain": {"COMPLETED"},
    "pause": {"COMPLETED"},
    "cancel": {"CANCELLED"},
    "flaky": {"COMPLETED"},
    "invalid": {"COMPLETED"},
}
STATUS_AFTER = {
    "MigrationStarted": "RUNNING",
    "MigrationResumed": "RUNNING",
    "MigrationRetried": "RUNNING",
    "MigrationPausing": "PAUSING",
    "MigrationPaused": "PAUSED",
    "MigrationFailed": "FAILED",
    "MigrationCompleted": "COMPLETED",
    "MigrationCancelled": "CANCELLED",
}


@dataclass(frozen=True)
class Plan:
    migration_id: str
    kind: str

    @property
    def expected(self) -> set[str]:
        return EXPECTED[self.kind]

    @classmethod
    def for_index(cls, i: int) -> Plan:
        return cls(f"m-{i:04d}", KINDS[i % len(KINDS)])

    def spec(self) -> MigrationSpec:
        table = f"flaky_{self.migration_id}" if self.kind == "flaky" else "customers"
        return MigrationSpec(
            source_connection="legacy",
            source_table=table,
            source_key="id",
            target_connection="warehouse",
            target_table="customers",
        )


class Driver:
    def __init__(self, names: KafkaNames, producer: Producer, plans: list[Plan]) -> None:
        self.names, self.producer, self.plans = names, producer, plans
        self.by_id = {p.migration_id: p for p in plans}
        self.status: dict[str, str] = {}
        self.failures: dict[str, int] = {}
        self.sent: set[str] = set()
        self.invalid_sent = 0
        self._events: Consumer | None = None
        self._last_event = time.monotonic()

    def send(self, command: Command, keyed: bool = True, copies: int = 1) -> None:
        value, headers = encode(command)
        key = command.migration_id.encode() if keyed else None
        for _ in range(copies):
            self.producer.produce(self.names.commands, value, key, headers=headers)
        self.sent.add(command.command_id)

    def send_invalid(self, migration_id: str) -> None:
        key = migration_id.encode()
        self.producer.produce(self.names.commands, b"\x00 not a record", key)
        unknown = {"type": "ExplodeMigration", "command_id": "x", "migration_id": migration_id}
        self.producer.produce(self.names.commands, json.dumps(unknown).encode(), key)
        self.invalid_sent += 2

    def start_all(self) -> None:
        for plan in self.plans:
            mid = plan.migration_id
            start = StartMigration(command_id=f"start-{mid}", migration_id=mid, spec=plan.spec())
            self.send(start, copies=2 if plan.kind == "plain" else 1)
            if plan.kind == "pause":
                self.send(
                    PauseMigration(command_id=f"pause-{mid}", migration_id=mid, reason="chaos")
                )
            elif plan.kind == "cancel":
                self.send(
                    CancelMigration(command_id=f"cancel-{mid}", migration_id=mid, reason="chaos")
                )
            elif plan.kind == "invalid":
                self.send_invalid(mid)
                self.send(start, keyed=False)  # re-keyed, then a duplicate
            self.producer.poll(0)
        self.producer.flush(60)

    def react(self, settings: Settings) -> None:
        for record in self._new_events(settings):
            self._last_event = time.monotonic()
            event = decode_event(record.value, record.headers)
            mid = event.migration_id
            self.status[mid] = STATUS_AFTER.get(event.type, self.status.get(mid, "PENDING"))
            plan = self.by_id.get(mid)
            if plan and plan.kind == "pause" and event.type == "MigrationPaused":
                self.send(ResumeMigration(command_id=f"resume-{mid}", migration_id=mid), copies=2)
            if plan and plan.kind == "flaky" and event.type == "MigrationFailed":
                self.failures[mid] = self.failures.get(mid, 0) + 1
                self.send(
                    RetryMigration(command_id=f"retry-{mid}-{self.failures[mid]}", migration_id=mid)
                )
        self.producer.poll(0)

    def settled(self, settings: Settings) -> bool:
        self.react(settings)
        return all(self.status.get(p.migration_id) in p.expected for p in self.plans)

    def quiet_for(self) -> float:
        """Seconds since the last event arrived."""
        return time.monotonic() - self._last_event

    def sent_command_ids(self) -> set[str]:
        return set(self.sent)

    def _new_events(self, settings: Settings) -> list[Consumed]:
        if self._events is None:
            self._events = Consumer(consumer_config(settings, f"driver-{uuid.uuid4().hex}"))
            topic = self.names.events
            parts = self._events.list_topics(topic, timeout=30).topics[topic].partitions
            self._events.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        return [Consumed.of(m) for m in self._events.consume(1000, 0.05) if m.error() is None]

    def close(self) -> None:
        if self._events is not None:
            self._events.close()

"""The orchestrator's state: in memory per input partition, rebuilt on
assignment from the compacted changelog written in the same transactions."""

from __future__ import annotations

import json
import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from config import Settings
from schemas.state import state_from_plain, state_to_plain
from streams.consumed import Consumed
from streams.domain import MigrationState, Status
from streams.retrying import transient_retry

log = logging.getLogger(__name__)
LOAD_TIMEOUT_SECONDS = 120.0


def state_bytes(state: MigrationState) -> bytes:
    return json.dumps(state_to_plain(state), separators=(",", ":")).encode()


def state_from_bytes(value: bytes) -> MigrationState:
    return state_from_plain(json.loads(value))


class StateStore:
    def __init__(self) -> None:
        self._by_partition: dict[int, dict[str, MigrationState]] = {}

    def get(self, partition: int, migration_id: str) -> MigrationState:
        found = self._by_partition.get(partition, {}).get(migration_id)
        return found or MigrationState(migration_id)

    def put(self, partition: int, state: MigrationState) -> None:
        self._by_partition.setdefault(partition, {})[state.migration_id] = state

    def adopt(self, loaded: dict[int, dict[str, MigrationState]]) -> None:
        self._by_partition.update(loaded)

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self._by_partition.pop(p, None)

    def partitions(self) -> set[int]:
        return set(self._by_partition)

    def count_active(self) -> int:
        active = (Status.RUNNING, Status.PAUSING, Status.PAUSED, Status.FAILED)
        return sum(
            s.status in active and s.exists
            for part in self._by_partition.values()
            for s in part.values()
        )


def load_changelog(
    settings: Settings, topic: str, partitions: set[int]
) -> dict[int, dict[str, MigrationState]]:
    """Read changelog partitions to their (committed) end."""
    loader = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"{settings.app_id}-changelog-loader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        return _read_to_end(loader, topic, partitions)
    finally:
        loader.close()


def _fold_record(states: dict[str, MigrationState], record: Consumed) -> None:
    if record.value is None:  # a tombstone
        states.pop((record.key or b"").decode(), None)
    else:
        state = state_from_bytes(record.value)
        states[state.migration_id] = state


def _end_offset(loader: Consumer, topic: str, partition: int) -> int:
    tp = TopicPartition(topic, partition)
    return transient_retry(lambda: loader.get_watermark_offsets(tp, timeout=30, cached=False)[1])


def _read_to_end(
    loader: Consumer, topic: str, partitions: set[int]
) -> dict[int, dict[str, MigrationState]]:
    states: dict[int, dict[str, MigrationState]] = {p: {} for p in partitions}
    ends = {p: _end_offset(loader, topic, p) for p in partitions}
    pending = {p for p in partitions if ends[p] > 0}
    loader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
    deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"changelog {topic} partitions {sorted(pending)} not read in time")
        msg = loader.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
        record = Consumed.of(msg)
        if error is None:
            _fold_record(states[record.partition], record)
        end = record.offset + (0 if error is not None else 1)
        if record.partition in pending and end >= ends[record.partition]:
            pending.discard(record.partition)
    log.info(
        "loaded %d migration states from %s %s",
        sum(map(len, states.values())),
        topic,
        sorted(partitions),
    )
    return states

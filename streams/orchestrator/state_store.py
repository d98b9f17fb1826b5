"""The orchestrator's state: in memory per input partition, rebuilt on
assignment from the compacted changelog written in the same transactions."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from config import Settings
from domain import MigrationState, Status
from schemas.state import state_from_plain, state_to_plain
from streams.kafka.consumed import Consumed
from streams.kafka.reader import read_committed

log = logging.getLogger(__name__)
LOAD_TIMEOUT_SECONDS = 120.0
LIVE = (Status.SYNCING, Status.CUTTING_OVER)


@dataclass(frozen=True)
class LiveLag:
    count: int
    lag_bytes: int
    lag_seconds: float


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

    def all(self) -> list[MigrationState]:
        return [s for part in self._by_partition.values() for s in part.values()]

    def count_active(self) -> int:
        active = (Status.RUNNING, Status.PAUSING, Status.PAUSED, Status.FAILED, *LIVE)
        return sum(
            s.status in active and s.exists
            for part in self._by_partition.values()
            for s in part.values()
        )


def live_lag(states: list[MigrationState]) -> LiveLag:
    """How many of `states` are live (SYNCING, CUTTING_OVER), and their greatest lag."""
    live = [s for s in states if s.status in LIVE]
    return LiveLag(
        count=len(live),
        lag_bytes=max((s.lag_bytes or 0 for s in live), default=0),
        lag_seconds=max((s.lag_seconds or 0.0 for s in live), default=0.0),
    )


def load_changelog(
    settings: Settings, topic: str, partitions: set[int]
) -> dict[int, dict[str, MigrationState]]:
    """Read changelog partitions to their (committed) end."""
    states: dict[int, dict[str, MigrationState]] = {p: {} for p in partitions}
    for record in read_committed(settings, topic, partitions, timeout=LOAD_TIMEOUT_SECONDS):
        _fold_record(states[record.partition], record)
    log.info(
        "loaded %d migration states from %s %s",
        sum(map(len, states.values())),
        topic,
        sorted(partitions),
    )
    return states


def _fold_record(states: dict[str, MigrationState], record: Consumed) -> None:
    if record.value is None:  # a tombstone
        states.pop((record.key or b"").decode(), None)
    else:
        state = state_from_bytes(record.value)
        states[state.migration_id] = state

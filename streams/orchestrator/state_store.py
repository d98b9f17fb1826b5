"""The orchestrator's state: in memory per input partition, rebuilt on
assignment from the compacted changelog written in the same transactions.

A partition's states are those of its migrations not yet retired; a finished
migration's state is retired after the retention period (domain.retention):
its changelog key gets a tombstone, and only its fingerprint and version stay
(streams.orchestrator.retired), so memory and the changelog to load grow with
the migrations kept, not with every migration ever run.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from config import Settings
from domain import MigrationState, Status
from domain.retention import finished_since
from schemas.state import state_from_plain, state_to_json
from streams.kafka.consumed import Consumed
from streams.kafka.reader import read_committed
from streams.orchestrator.retired import RETIRED_KEY_PREFIX, RetiredIds, is_retired_key

log = logging.getLogger(__name__)
LOAD_TIMEOUT_SECONDS = 120.0
LIVE = (Status.SYNCING, Status.CUTTING_OVER)
ACTIVE = frozenset({Status.RUNNING, Status.PAUSING, Status.PAUSED, Status.FAILED, *LIVE})
Slot = tuple[int, str]  # (input partition, migration id)


@dataclass(frozen=True)
class LiveLag:
    count: int
    lag_bytes: int
    lag_seconds: float


def state_bytes(state: MigrationState) -> bytes:
    return state_to_json(state)


def state_from_bytes(value: bytes) -> MigrationState:
    return state_from_plain(json.loads(value))


def is_active(state: MigrationState) -> bool:
    return state.status in ACTIVE and state.spec is not None


@dataclass
class PartitionStates:
    """One input partition's migrations: their states, the retired ones, and
    when each finished one finished (epoch seconds)."""

    states: dict[str, MigrationState] = field(default_factory=dict)
    retired: RetiredIds = field(default_factory=RetiredIds)
    finished: dict[str, float] = field(default_factory=dict)
    active: int = 0

    def put(self, state: MigrationState) -> None:
        mid = state.migration_id
        old = self.states.pop(mid, None)
        if old is not None and is_active(old):
            self.active -= 1
        if state.retired:
            self.finished.pop(mid, None)
            self.retired.add(mid, state.version)
            return
        self.states[mid] = state
        self.active += is_active(state)
        since = finished_since(state)
        if since is not None:
            self.finished[mid] = since.timestamp()
        else:  # running again (a diff or repair of a completed migration)
            self.finished.pop(mid, None)

    def loaded(self) -> None:
        """After the changelog is read: the lookup, the counts, the finished."""
        self.retired.loaded()
        self.active = sum(map(is_active, self.states.values()))
        for mid, state in self.states.items():
            since = finished_since(state)
            if since is not None:
                self.finished[mid] = since.timestamp()


class StateStore:
    def __init__(self, retention_seconds: float = math.inf) -> None:
        self.retention_seconds = retention_seconds
        self._by_partition: dict[int, PartitionStates] = {}

    def get(self, partition: int, migration_id: str) -> MigrationState:
        part = self._by_partition.get(partition)
        if part is None:
            return MigrationState(migration_id)
        found = part.states.get(migration_id)
        if found is not None:
            return found
        version = part.retired.version(migration_id)
        if version is not None:
            return MigrationState(migration_id, version=version, retired=True)
        return MigrationState(migration_id)

    def put(self, partition: int, state: MigrationState) -> None:
        self._part(partition).put(state)

    def adopt(self, loaded: dict[int, PartitionStates]) -> None:
        self._by_partition.update(loaded)

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self._by_partition.pop(p, None)

    def all(self) -> list[MigrationState]:
        return [s for part in self._by_partition.values() for s in part.states.values()]

    def count_active(self) -> int:
        return sum(part.active for part in self._by_partition.values())

    def count_kept(self) -> int:
        return sum(len(part.states) for part in self._by_partition.values())

    def count_retired(self) -> int:
        return sum(len(part.retired) for part in self._by_partition.values())

    def due(self, now: float, limit: int) -> list[tuple[Slot, MigrationState]]:
        """Up to `limit` finished states past the retention period at `now` (epoch s)."""
        cutoff = now - self.retention_seconds
        out: list[tuple[Slot, MigrationState]] = []
        for partition, part in self._by_partition.items():
            for mid, since in part.finished.items():
                if since <= cutoff:
                    out.append(((partition, mid), part.states[mid]))
                    if len(out) >= limit:
                        return out
        return out

    def retired_records(
        self, partition: int, extra: Sequence[tuple[str, int]] = ()
    ) -> list[tuple[bytes, bytes]]:
        """The partition's retired-id chunks the changelog lacks, `extra` included."""
        return self._part(partition).retired.records(extra)

    def retired_written(self, partition: int) -> None:
        self._part(partition).retired.written()

    def _part(self, partition: int) -> PartitionStates:
        part = self._by_partition.get(partition)
        if part is None:
            part = self._by_partition[partition] = PartitionStates()
        return part


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
) -> dict[int, PartitionStates]:
    """Read changelog partitions to their (committed) end. Each key's latest
    record is kept as bytes, and only those are decoded at the end: the
    records compaction has not yet removed (older states, tombstoned keys)
    cost a dict entry, not a decoding."""
    loaded: dict[int, PartitionStates] = {p: PartitionStates() for p in partitions}
    latest: dict[int, dict[bytes, bytes]] = {p: {} for p in partitions}
    for record in read_committed(settings, topic, partitions, timeout=LOAD_TIMEOUT_SECONDS):
        _fold_record(loaded[record.partition], latest[record.partition], record)
    for partition, part in loaded.items():
        for value in latest[partition].values():
            state = state_from_bytes(value)
            part.states[state.migration_id] = state
        part.loaded()
    log.info(
        "loaded %d migration states (%d retired) from %s %s",
        sum(len(p.states) for p in loaded.values()),
        sum(len(p.retired) for p in loaded.values()),
        topic,
        sorted(partitions),
    )
    return loaded


def _fold_record(part: PartitionStates, latest: dict[bytes, bytes], record: Consumed) -> None:
    key = record.key or b""
    if is_retired_key(key):
        if record.value is not None:
            part.retired.load_chunk(int(key[len(RETIRED_KEY_PREFIX) :]), record.value)
    elif record.value is None:  # a tombstone
        latest.pop(key, None)
    else:
        latest[key] = record.value

"""Prometheus metrics of the orchestrator worker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from domain import (
    CommandRejected,
    Event,
    MigrationCancelled,
    MigrationCompleted,
    MigrationFailed,
    MigrationStarted,
)
from streams.orchestrator.state_store import StateStore, live_lag

COMMANDS = Counter("migrator_commands_total", "Commands handled, by outcome", ["type", "outcome"])
MIGRATIONS = Counter("migrator_migrations_total", "Migrations by what happened to them", ["event"])
ACTIVE = Gauge("migrator_active_migrations", "Migrations not finished, on this worker's partitions")
RETIRED = Counter(
    "migrator_migrations_retired_total",
    "Finished migrations whose state was dropped after the retention period",
)
TXN_COMMIT = Histogram(
    "migrator_transaction_commit_seconds",
    "Time to send offsets and commit one transaction",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TXN_ABORTS = Counter("migrator_transaction_aborts_total", "Transactions aborted and retried")
PRODUCERS_RENEWED = Counter(
    "migrator_producers_renewed_total",
    "Transactional producers replaced after a transaction was lost (broker away)",
)
FORWARDED = Counter(
    "migrator_inputs_forwarded_total",
    "Inputs that arrived away from their migration's partition and were forwarded home",
    ["topic"],
)
BATCH_INPUTS = Histogram(
    "migrator_batch_inputs", "Inputs per transaction", buckets=(1, 5, 10, 50, 100, 250, 500, 1000)
)
DLQ_WRITTEN = Counter(
    "migrator_dlq_records_total", "Records sent to a dead-letter topic", ["topic"]
)
DLQ_DEPTH = Gauge(
    "migrator_dlq_depth", "Committed records retained in a dead-letter topic", ["topic"]
)
CONSUMER_LAG = Gauge(
    "migrator_consumer_lag",
    "Offsets a consumer group's commits are behind the topic's committed end",
    ["group", "topic"],
)

LIVE = Gauge(
    "migrator_cdc_migrations",
    "Live migrations (SYNCING or CUTTING_OVER) on this worker's partitions",
)
LIVE_LAG_BYTES = Gauge(
    "migrator_cdc_lag_bytes_max",
    "The greatest lag in bytes of source WAL among the live migrations on this worker's"
    " partitions, as their last progress said (0: none)",
)
LIVE_LAG_SECONDS = Gauge(
    "migrator_cdc_lag_seconds_max",
    "The greatest lag in seconds among the live migrations on this worker's partitions",
)

_LIFECYCLE: dict[type[Event], str] = {
    MigrationStarted: "started",
    MigrationCompleted: "completed",
    MigrationFailed: "failed",
    MigrationCancelled: "cancelled",
}


def count_command(command_type: str, events: tuple[Event, ...]) -> None:
    if not events:
        outcome = "duplicate"
    elif isinstance(events[0], CommandRejected):
        outcome = "rejected"
    else:
        outcome = "accepted"
    counter = _commands.get((command_type, outcome))
    if counter is None:  # labels() takes a lock and builds a key: once per pair
        counter = _commands[(command_type, outcome)] = COMMANDS.labels(command_type, outcome)
    counter.inc()


def count_lifecycle(events: tuple[Event, ...]) -> None:
    for event in events:
        counter = _lifecycle.get(type(event))
        if counter is not None:
            counter.inc()


_commands: dict[tuple[str, str], Counter] = {}
_lifecycle = {kind: MIGRATIONS.labels(name) for kind, name in _LIFECYCLE.items()}


def gauge_live(states: StateStore) -> None:
    """The live migrations' gauges, read from every state in memory (a scan:
    not per batch)."""
    live = live_lag(states.all())
    LIVE.set(live.count)
    LIVE_LAG_BYTES.set(live.lag_bytes)
    LIVE_LAG_SECONDS.set(live.lag_seconds)

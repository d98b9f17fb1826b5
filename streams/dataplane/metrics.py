"""Prometheus metrics of the phase workers (the data plane)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from psycopg_pool import AsyncConnectionPool

ROWS = Counter("migrator_phase_rows_total", "Rows moved, by phase", ["phase"])
BATCHES = Counter("migrator_phase_batches_total", "Batches committed, by phase", ["phase"])
PHASES = Counter(
    "migrator_phase_runs_total", "Phase runs finished, by phase and outcome", ["phase", "outcome"]
)
DURATION = Histogram(
    "migrator_phase_duration_seconds",
    "Time of one phase run, start to finish (or halt)",
    ["phase"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
SCORE = Histogram(
    "migrator_validation_score",
    "Overall validation score of a migration",
    buckets=(0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0),
)
RETRIES = Counter(
    "migrator_phase_retries_total", "Transient database errors retried", ["connection"]
)
BREAKER = Gauge(
    "migrator_breaker_state",
    "Circuit breaker per connection: 0 closed, 1 half-open, 2 open",
    ["connection"],
)
CONCURRENCY_IN_USE = Gauge(
    "migrator_phase_concurrency_in_use", "Batches in flight on this phase worker"
)
CONCURRENCY_LIMIT = Gauge(
    "migrator_phase_concurrency_limit", "Most batches in flight at once on this phase worker"
)
ACTIVE_RUNS = Gauge("migrator_phase_active_runs", "Phase runs in progress on this worker")


class PoolCollector(Collector):
    """Connection-pool use per named connection, read at scrape time."""

    def __init__(self, pools: Callable[[], dict[str, AsyncConnectionPool]]) -> None:
        self.pools = pools

    def collect(self) -> Iterator[GaugeMetricFamily]:
        conns = GaugeMetricFamily(
            "migrator_db_pool_connections",
            "Database pool connections per connection name, by state (in_use, idle, max)",
            labels=["connection", "state"],
        )
        waiting = GaugeMetricFamily(
            "migrator_db_pool_waiting",
            "Requests waiting for a pooled connection",
            labels=["connection"],
        )
        for name, pool in sorted(self.pools().items()):
            stats = pool.get_stats()
            size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
            conns.add_metric([name, "in_use"], size - idle)
            conns.add_metric([name, "idle"], idle)
            conns.add_metric([name, "max"], pool.max_size)
            waiting.add_metric([name], stats.get("requests_waiting", 0))
        yield conns
        yield waiting


@contextmanager
def pools_collected(pools: Callable[[], dict[str, AsyncConnectionPool]]) -> Iterator[None]:
    """Scrapes report the pools while the block runs (a worker that stops
    leaves no collector behind, so another can start in the same process)."""
    collector = PoolCollector(pools)
    REGISTRY.register(collector)
    try:
        yield
    finally:
        REGISTRY.unregister(collector)

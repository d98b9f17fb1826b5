"""Prometheus metrics of the projector (served on PROJECTOR_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LAG_RECORDS = Gauge(
    "migrator_projection_lag_records",
    "Committed events not yet projected (last stable offset - position), by partition",
    ["partition"],
)
LAG_SECONDS = Gauge(
    "migrator_projection_lag_seconds",
    "Age of the newest projected event while events wait behind it; 0 when caught up",
)
EVENTS = Counter("migrator_projection_events_total", "Events applied to the read model")
DUPLICATES = Counter(
    "migrator_projection_duplicates_total", "Events seen again, identical, and not applied again"
)
QUARANTINED = Gauge(
    "migrator_projection_quarantined",
    "Migrations the read model holds in quarantine (a gap, a fork or an unstorable event"
    " in their log); their later events are held until a refold",
)
HELD = Counter(
    "migrator_projection_held_total", "Events of quarantined migrations, held back (not applied)"
)
UNDECODABLE = Counter("migrator_projection_undecodable_total", "Event records that cannot be read")
BATCH_COMMIT = Histogram(
    "migrator_projection_batch_commit_seconds",
    "Time to fold, write and commit one batch (rows and offsets in one transaction)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_EVENTS = Histogram(
    "migrator_projection_batch_events",
    "Events per projected batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
MIGRATION_DURATION = Histogram(
    "migrator_migration_duration_seconds",
    "From MigrationStarted to MigrationCompleted, MigrationFailed or MigrationCancelled"
    " (event times), observed as the projector applies the ending event",
    ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)

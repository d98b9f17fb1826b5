"""What the orchestrator counts, for the metrics of DESIGN.md section 7."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import REGISTRY

from domain import MigrationSpec, MigrationState, StartMigration, Status, decide
from streams.orchestrator import metrics
from streams.orchestrator.state_store import StateStore

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_command_counts_as_accepted_rejected_or_duplicate() -> None:
    start = StartMigration(command_id="c-1", migration_id="m-metrics", spec=SPEC)
    before = {
        o: value("migrator_commands_total", type="StartMigration", outcome=o)
        for o in ("accepted", "rejected", "duplicate")
    }
    started = decide(MigrationState(migration_id="m-metrics"), start, "T")

    metrics.count_command("StartMigration", started)
    metrics.count_command("StartMigration", ())
    metrics.count_command(
        "StartMigration",
        decide(
            MigrationState(migration_id="m-metrics", spec=SPEC, version=2),
            StartMigration(command_id="c-2", migration_id="m-metrics", spec=SPEC),
            "T",
        ),
    )

    for outcome in ("accepted", "rejected", "duplicate"):
        after = value("migrator_commands_total", type="StartMigration", outcome=outcome)
        assert after == before[outcome] + 1, outcome


def test_lifecycle_events_are_counted_by_name() -> None:
    before = value("migrator_migrations_total", event="started")
    started = decide(
        MigrationState(migration_id="m-life"),
        StartMigration(command_id="c-1", migration_id="m-life", spec=SPEC),
        "T",
    )

    metrics.count_lifecycle(started)

    assert value("migrator_migrations_total", event="started") == before + 1


def test_the_live_gauges_count_live_migrations_and_take_their_greatest_lag() -> None:
    states = StateStore()
    live = replace(SPEC, cdc=True)
    for n, (status, lag_bytes, lag_seconds) in enumerate(
        [
            (Status.SYNCING, 4096, 0.5),
            (Status.CUTTING_OVER, 512, 7.25),
            (Status.SYNCING, None, None),  # no progress reported yet
            (Status.PAUSED, 10**9, 900.0),  # paused: not live, its old lag left out
            (Status.RUNNING, None, None),
        ]
    ):
        states.put(
            n % 3,
            MigrationState(
                migration_id=f"m-{n}",
                status=status,
                spec=live,
                lag_bytes=lag_bytes,
                lag_seconds=lag_seconds,
            ),
        )

    metrics.gauge_live(states)

    assert value("migrator_cdc_migrations") == 3
    assert value("migrator_cdc_lag_bytes_max") == 4096
    assert value("migrator_cdc_lag_seconds_max") == 7.25
    assert states.count_active() == 5  # the live ones count as active

"""What the orchestrator counts, for the metrics of DESIGN.md section 7."""

from __future__ import annotations

from prometheus_client import REGISTRY

from domain import MigrationSpec, MigrationState, StartMigration, decide
from streams.orchestrator import metrics

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

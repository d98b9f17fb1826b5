"""What the orchestrator counts, for the metrics of DESIGN.md section 7."""

from __future__ import annotations

from prometheus_client import REGISTRY

from domain import MigrationSpec, MigrationState, StartMigration, decide
from streams.orchestrator import metrics

SPEC = MigrationSpec("legacy", "customers", "id", "warehouse", "customers")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_command_counts_as_accepted_rejected_or_duplicate() -> None:
    start = StartMigration("c-1", "m-metrics", SPEC)
    before = {
        o: value("migrator_commands_total", type="StartMigration", outcome=o)
        for o in ("accepted", "rejected", "duplicate")
    }
    started = decide(MigrationState("m-metrics"), start, "T")

    metrics.count_command("StartMigration", started)
    metrics.count_command("StartMigration", ())
    metrics.count_command(
        "StartMigration",
        decide(
            MigrationState("m-metrics", spec=SPEC, version=2),
            StartMigration("c-2", "m-metrics", SPEC),
            "T",
        ),
    )

    for outcome in ("accepted", "rejected", "duplicate"):
        after = value("migrator_commands_total", type="StartMigration", outcome=outcome)
        assert after == before[outcome] + 1, outcome


def test_lifecycle_events_are_counted_by_name() -> None:
    before = value("migrator_migrations_total", event="started")
    started = decide(MigrationState("m-life"), StartMigration("c-1", "m-life", SPEC), "T")

    metrics.count_lifecycle(started)

    assert value("migrator_migrations_total", event="started") == before + 1

"""Kafka names are a contract: a rename must fail here, not orphan state."""

from __future__ import annotations

from config import KafkaNames


def test_the_default_names_are_pinned() -> None:
    names = KafkaNames()

    assert names.main_topics() == (
        "migration.commands",
        "migration.phase-results",
        "migration.events",
        "migration.phase-tasks",
    )
    assert names.dlq_topics() == (
        "migration.commands.dlq",
        "migration.phase-results.dlq",
        "migration.events.dlq",
        "migration.phase-tasks.dlq",
    )
    assert names.state_changelog == "migration-orchestrator-migration-state-changelog"
    assert names.projector_group == "migration-projector"
    assert names.phase_worker_group == "migration-phase-workers"
    assert names.redrive_ledger == "migration.dlq-redrives"
    assert names.redrive_transactional_id("migration.commands.dlq") == (
        "migration-orchestrator-redrive-migration.commands.dlq"
    )
    assert names.replay_group("r1") == "migration-orchestrator-replay-r1"


def test_a_prefix_applies_to_topics_and_groups() -> None:
    names = KafkaNames(app_id="app", prefix="t1.")

    assert names.commands == "t1.migration.commands"
    assert names.dlq(names.events) == "t1.migration.events.dlq"
    assert names.projector_group == "t1.migration-projector"
    assert names.phase_worker_group == "t1.migration-phase-workers"
    assert names.state_changelog == "app-migration-state-changelog"

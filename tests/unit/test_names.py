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


def test_every_topic_is_declared_with_its_partitions_and_configuration() -> None:
    forever = {"retention.ms": "-1", "retention.bytes": "-1"}
    specs = {s.name: (s.partitions, dict(s.config)) for s in KafkaNames().topic_specs(6)}

    assert specs == {
        "migration.commands": (6, {}),
        "migration.phase-results": (6, {}),
        "migration.events": (6, forever),
        "migration.phase-tasks": (6, {}),
        "migration.commands.dlq": (6, forever),
        "migration.phase-results.dlq": (6, forever),
        "migration.events.dlq": (6, forever),
        "migration.phase-tasks.dlq": (6, forever),
        "migration-orchestrator-migration-state-changelog": (6, {"cleanup.policy": "compact"}),
        "migration.dlq-redrives": (1, forever),
    }


def test_one_topic_spec_is_found_by_name() -> None:
    names = KafkaNames(prefix="t1.")

    ledger = names.topic_spec(names.redrive_ledger, 3)

    assert (ledger.name, ledger.partitions) == ("t1.migration.dlq-redrives", 1)

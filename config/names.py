"""Kafka names are a contract: app id, topics, tables, groups, transactional ids,
and each topic's partitions and configuration.

A rename here orphans state in production, so tests pin the whole set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DLQ_SUFFIX = ".dlq"
STATE_TABLE = "migration-state"
PROJECTOR_GROUP = "migration-projector"
PHASE_WORKER_GROUP = "migration-phase-workers"
REDRIVE_LEDGER = "migration.dlq-redrives"

KEEP_FOREVER: Mapping[str, str] = {"retention.ms": "-1", "retention.bytes": "-1"}
COMPACTED: Mapping[str, str] = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic as it is created: its partitions and its configuration (the
    broker's defaults for everything not named)."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KafkaNames:
    """Every Kafka name the system uses, derived from an app id and a prefix."""

    app_id: str = "migration-orchestrator"
    prefix: str = ""

    @property
    def commands(self) -> str:
        return f"{self.prefix}migration.commands"

    @property
    def phase_results(self) -> str:
        return f"{self.prefix}migration.phase-results"

    @property
    def events(self) -> str:
        return f"{self.prefix}migration.events"

    @property
    def phase_tasks(self) -> str:
        return f"{self.prefix}migration.phase-tasks"

    @property
    def state_changelog(self) -> str:
        """The state table's changelog: `{app_id}-{table}-changelog`, compacted."""
        return f"{self.app_id}-{STATE_TABLE}-changelog"

    @property
    def orchestrator_group(self) -> str:
        return self.app_id

    def transactional_id(self, worker_id: str) -> str:
        """One per worker instance; a restarted instance with the same id fences
        its predecessor's open transaction at once (KIP-447 fences zombies)."""
        return f"{self.app_id}-orchestrator-{worker_id}"

    @property
    def projector_group(self) -> str:
        return f"{self.prefix}{PROJECTOR_GROUP}"

    @property
    def phase_worker_group(self) -> str:
        """The phase workers share one group over `migration.phase-tasks`."""
        return f"{self.prefix}{PHASE_WORKER_GROUP}"

    @property
    def redrive_ledger(self) -> str:
        """What every redrive sent, written in the redrive's own transactions."""
        return f"{self.prefix}{REDRIVE_LEDGER}"

    def redrive_transactional_id(self, dlq: str) -> str:
        """One per dead-letter topic: a new redrive run fences an interrupted one."""
        return f"{self.app_id}-redrive-{dlq}"

    def replay_group(self, replay_id: str) -> str:
        """A topic replay keeps its position in this group's offsets."""
        return f"{self.app_id}-replay-{replay_id}"

    def dlq(self, topic: str) -> str:
        return f"{topic}{DLQ_SUFFIX}"

    def main_topics(self) -> tuple[str, ...]:
        return (self.commands, self.phase_results, self.events, self.phase_tasks)

    def dlq_topics(self) -> tuple[str, ...]:
        return tuple(self.dlq(t) for t in self.main_topics())

    def topic_specs(self, partitions: int) -> tuple[TopicSpec, ...]:
        """Every topic. The stream topics, their dead letters and the changelog
        have the same `partitions`, so keys co-partition; events and dead
        letters are kept forever, the changelog is compacted (latest state per
        migration); the redrive ledger is one ordered audit log, kept forever."""
        return (
            TopicSpec(self.commands, partitions),
            TopicSpec(self.phase_results, partitions),
            TopicSpec(self.events, partitions, KEEP_FOREVER),
            TopicSpec(self.phase_tasks, partitions),
            *(TopicSpec(dlq, partitions, KEEP_FOREVER) for dlq in self.dlq_topics()),
            TopicSpec(self.state_changelog, partitions, COMPACTED),
            TopicSpec(self.redrive_ledger, 1, KEEP_FOREVER),
        )

    def topic_spec(self, topic: str, partitions: int) -> TopicSpec:
        """The spec of one of `topic_specs`."""
        return next(s for s in self.topic_specs(partitions) if s.name == topic)

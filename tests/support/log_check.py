"""Check the event log the way Kafka's transactional copy test checks its
output (read it with `streams.kafka.reader.read_committed`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain import Event, replay
from schemas import decode_event
from streams.kafka.consumed import Consumed


@dataclass
class LogReport:
    events: dict[str, list[Event]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def decisions(self, causation_id: str) -> int:
        """How many separate decisions an input caused (0 if none)."""
        return self._blocks.get(causation_id, 0)

    _blocks: dict[str, int] = field(default_factory=dict)


def check_events(records: Iterable[Consumed]) -> LogReport:
    """Per migration: sequences exactly 1..N; each input decided at most once."""
    report = LogReport()
    by_migration: dict[str, list[Event]] = defaultdict(list)
    for record in records:
        event = decode_event(record.value, record.headers)
        by_migration[event.migration_id].append(event)
    for mid, events in by_migration.items():
        sequences = [e.sequence for e in events]
        if sequences != list(range(1, len(events) + 1)):
            report.violations.append(f"{mid}: sequences {_summary(sequences)}")
        previous = None
        for event in events:
            if event.causation_id != previous:
                report._blocks[event.causation_id] = report._blocks.get(event.causation_id, 0) + 1
            previous = event.causation_id
    repeated = [c for c, n in report._blocks.items() if n > 1]
    if repeated:
        report.violations.append(f"{len(repeated)} inputs decided more than once: {repeated[:5]}")
    report.events = dict(by_migration)
    return report


def final_status(report: LogReport, migration_id: str) -> str | None:
    events = report.events.get(migration_id)
    if not events:
        return None
    try:
        return replay(migration_id, events).status.value
    except ValueError as exc:
        return f"unreplayable: {exc}"


def _summary(sequences: list[int]) -> str:
    dupes = sorted({s for s in sequences if sequences.count(s) > 1})
    return f"{len(sequences)} events, max {max(sequences)}, repeated {dupes[:10]}"

"""Which dead letters a redrive sends back, which it skips and why. No I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ops.dead_letters.letters import DeadLetterRecord
from ops.errors import BadSelection

Position = tuple[int, int]
POSITION = r"^[0-9]{1,9}:[0-9]{1,18}$"  # partition:offset, each fits Kafka's int32 / int64


@dataclass(frozen=True)
class Selection:
    """Every dead letter (`everything`), or the ones at `positions`; at most `limit`."""

    everything: bool = False
    positions: frozenset[Position] = frozenset()
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.everything == bool(self.positions):
            raise BadSelection("give either every record (all) or some (offsets p:o)")
        if self.limit is not None and self.limit < 1:
            raise BadSelection(f"limit must be at least 1, not {self.limit}")

    def wants(self, position: Position) -> bool:
        return self.everything or position in self.positions


def parse_positions(texts: Iterable[str]) -> frozenset[Position]:
    """`p:o` strings (partition:offset) as positions."""
    return frozenset(parse_position(text) for text in texts)


def parse_position(text: str) -> Position:
    """`p:o` as (partition, offset); BadSelection unless both are small enough for Kafka."""
    if not re.fullmatch(POSITION, text):
        raise BadSelection(f"{text!r} is not partition:offset (e.g. 0:42)")
    partition, _, offset = text.partition(":")
    return int(partition), int(offset)


@dataclass(frozen=True)
class Plan:
    dlq: str
    max_attempts: int
    ready: tuple[DeadLetterRecord, ...] = ()
    already: tuple[Position, ...] = ()  # redriven before (in the ledger)
    refused: tuple[DeadLetterRecord, ...] = ()  # failed max_attempts times already
    unroutable: tuple[DeadLetterRecord, ...] = ()  # no original topic header
    missing: tuple[Position, ...] = ()  # asked for, not in the topic

    def problems(self) -> list[str]:
        """Why the records asked for by position cannot all be redriven."""
        said = [f"no dead letter at {p}:{o} of {self.dlq}" for p, o in self.missing]
        said += [_refusal(r, self.max_attempts) for r in self.refused]
        said += [f"{_at(r)} has no kafka_dlt-original-topic header" for r in self.unroutable]
        return said

    def preview(self, sample: int = 3) -> dict[str, Any]:
        return {
            "dlq": self.dlq,
            "to_redrive": len(self.ready),
            "already_redriven": len(self.already),
            "refused_max_attempts": len(self.refused),
            "unroutable": len(self.unroutable),
            "missing": len(self.missing),
            "sample": [r.summary() for r in self.ready[:sample]],
            "refusals": [_refusal(r, self.max_attempts) for r in self.refused[:sample]],
        }


def make_plan(
    dlq: str,
    letters: Iterable[DeadLetterRecord],
    done: Mapping[Position, object],
    selection: Selection,
    max_attempts: int,
) -> Plan:
    """Sort the selected dead letters into ready, already done, refused, unroutable."""
    ready, already, refused, unroutable, seen = [], [], [], [], set()
    for letter in letters:
        if not selection.wants(letter.position):
            continue
        seen.add(letter.position)
        if letter.position in done:
            already.append(letter.position)
        elif letter.attempts >= max_attempts:
            refused.append(letter)
        elif not letter.original_topic:
            unroutable.append(letter)
        else:
            ready.append(letter)
    missing = sorted(selection.positions - seen)
    return Plan(
        dlq,
        max_attempts,
        tuple(ready[: selection.limit]),
        tuple(already),
        tuple(refused),
        tuple(unroutable),
        tuple(missing),
    )


def _at(letter: DeadLetterRecord) -> str:
    return f"{letter.record.topic} {letter.record.partition}:{letter.record.offset}"


def _refusal(letter: DeadLetterRecord, max_attempts: int) -> str:
    return (
        f"refused {_at(letter)}: it has failed {letter.attempts} times "
        f"(max attempts {max_attempts}); fix its cause and purge it, or raise --max-attempts"
    )

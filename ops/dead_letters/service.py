"""The dead-letter use cases, one function each: list, show, redrive (its
preview, then the run) and purge. The CLI and the API both call these and only
render or serialise what comes back (plain data: dicts and dataclasses).

`topic` is a dead-letter topic or the topic it belongs to. Every call blocks
on Kafka: the API runs them in a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config import KafkaNames, Settings
from ops.dead_letters.ledger import read_ledger
from ops.dead_letters.letters import dlq_topic, read_letter, read_letters, read_records
from ops.dead_letters.plan import Plan
from ops.dead_letters.purge import PurgePlan, plan_purge, purge
from ops.dead_letters.redrive import Redrive, RedriveResult, plan_redrive
from ops.dead_letters.requests import PurgeRequest, RedriveRequest
from ops.dead_letters.show import describe


@dataclass(frozen=True)
class PurgeOutcome:
    """A purge's plan; what it deleted when confirmed (else nothing)."""

    plan: PurgePlan
    confirmed: bool
    first_offsets: dict[int, int]  # partition -> its first offset now (confirmed only)

    @property
    def deleted(self) -> int:
        return self.plan.records if self.confirmed else 0


def names_of(settings: Settings) -> KafkaNames:
    return KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)


def dead_letter_topic(settings: Settings, topic: str) -> str:
    """The dead-letter topic meant by `topic` (itself, or its `.dlq`)."""
    return dlq_topic(names_of(settings), topic)


def list_dead_letters(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every dead letter's summary (position, key, error headers) and whether
    it has been redriven, in partition and offset order."""
    dlq = dead_letter_topic(settings, topic)
    ledger = read_ledger(settings)
    letters = list(read_letters(settings, dlq, ledger))
    done = ledger.positions(dlq)
    return [{**letter.summary(), "redriven": letter.position in done} for letter in letters]


def show_dead_letter(settings: Settings, topic: str, partition: int, offset: int) -> dict[str, Any]:
    """One dead letter: its summary, headers and original value, decoded."""
    dlq = dead_letter_topic(settings, topic)
    letter = read_letter(settings, dlq, partition, offset, read_ledger(settings))
    return describe(letter, names_of(settings))


def preview_redrive(settings: Settings, topic: str, request: RedriveRequest) -> Plan:
    """What the redrive would do now (read-only: the preview and the dry run)."""
    dlq = dead_letter_topic(settings, topic)
    return plan_redrive(
        settings, dlq, request.selection(), request.attempts(settings.ops.dlq_max_attempts)
    )


def refusal(plan: Plan, request: RedriveRequest) -> str | None:
    """Why a redrive of records picked by position would be refused (the run
    refuses it too, after fencing); None when it would go."""
    problems = plan.problems()
    return "; ".join(problems) if request.offsets and problems else None


def redrive(
    settings: Settings,
    topic: str,
    request: RedriveRequest,
    *,
    progress: Callable[[int], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> RedriveResult:
    """Send the requested dead letters back, exactly once; `progress` hears
    the records done so far, `stop` ends the run after the batch in flight."""
    dlq = dead_letter_topic(settings, topic)
    run = Redrive(settings, dlq, rate=request.rate, stop=stop, progress=progress)
    return run.run(request.selection(), request.attempts(settings.ops.dlq_max_attempts))


def purge_dead_letters(settings: Settings, topic: str, request: PurgeRequest) -> PurgeOutcome:
    """Plan the purge; delete as planned only when the request confirms it."""
    dlq = dead_letter_topic(settings, topic)
    cut = request.cut()
    positions = ((r.partition, r.offset) for r in read_records(settings, dlq))
    plan = plan_purge(dlq, positions, cut)
    if not request.confirm:
        return PurgeOutcome(plan, confirmed=False, first_offsets={})
    return PurgeOutcome(plan, confirmed=True, first_offsets=purge(settings, plan))

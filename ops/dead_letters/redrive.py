"""Send dead letters back to their original topics, exactly once.

One transactional producer per dead-letter topic (`transactional.id`
`<app>-redrive-<dlq>`) writes, per batch, the redriven records and their
ledger entries in one transaction. A new run first fences any earlier one
(its open transaction is aborted), then reads the ledger, so a run that was
cancelled or killed and is run again redrives every record exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Producer

from config import KafkaNames, Settings
from ops.dead_letters.ledger import Redriven, ensure_ledger, read_ledger
from ops.dead_letters.letters import DeadLetterRecord, read_letters
from ops.dead_letters.plan import Plan, Selection, make_plan
from ops.errors import BadSelection
from streams.kafka import clients
from streams.kafka.dead_letters import Origin, redrive_headers
from streams.kafka.produce import produce
from streams.kafka.topics import partition_count
from streams.kafka.transaction import Transactions

TIMEOUT = 30.0
BATCH = 100
MAX_RATE = 1_000_000.0  # records/s
MIN_RATE = 0.001  # a record every 1,000 s: slower is a stop, not a pace
Checkpoint = Callable[[str, int], None]  # (point, batch number): a test's hook


@dataclass(frozen=True)
class RedriveResult:
    plan: Plan
    redriven: int
    cancelled: bool


def plan_redrive(settings: Settings, dlq: str, selection: Selection, max_attempts: int) -> Plan:
    """What a redrive would do now (read-only: the preview and the dry run)."""
    ledger = read_ledger(settings)
    letters = read_letters(settings, dlq, ledger)
    return make_plan(dlq, letters, ledger.positions(dlq), selection, max_attempts)


def transactional_id(settings: Settings, dlq: str) -> str:
    return KafkaNames(
        app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix
    ).redrive_transactional_id(dlq)


class Redrive:
    """One redrive run over one dead-letter topic."""

    def __init__(
        self,
        settings: Settings,
        dlq: str,
        *,
        rate: float | None = None,
        batch: int = BATCH,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] = lambda _: None,
        checkpoint: Checkpoint = lambda *_: None,
    ) -> None:
        if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
            raise BadSelection(f"rate must be {MIN_RATE:g} to {MAX_RATE:g} records/s, not {rate:g}")
        self.settings, self.dlq, self.rate = settings, dlq, rate
        self.batch = max(1, batch if rate is None else min(batch, int(rate)))
        self.stop = stop or threading.Event()
        self.progress, self.checkpoint = progress, checkpoint
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")

    def run(self, selection: Selection, max_attempts: int) -> RedriveResult:
        ledger = ensure_ledger(self.settings)
        producer = clients.transactional_producer(
            self.settings, transactional_id(self.settings, self.dlq)
        )
        transactions = Transactions(producer, TIMEOUT)
        transactions.init()  # fences an earlier run; only then read the ledger
        plan = plan_redrive(self.settings, self.dlq, selection, max_attempts)
        if selection.positions and plan.problems():
            raise BadSelection("; ".join(plan.problems()))
        done = self._send_all(transactions, ledger, plan.ready)
        producer.flush(TIMEOUT)
        return RedriveResult(plan, done, cancelled=done < len(plan.ready))

    def _send_all(
        self, transactions: Transactions, ledger: str, ready: Sequence[DeadLetterRecord]
    ) -> int:
        size, partitions = self.batch, dict[str, int]()
        started, done = time.monotonic(), 0
        for number, start in enumerate(range(0, len(ready), size), 1):
            if self.stop.is_set():
                break
            batch = ready[start : start + size]
            self._one_transaction(transactions, ledger, batch, partitions, number)
            done += len(batch)
            self.progress(done)
            self._pace(started, done)
        return done

    def _one_transaction(
        self,
        transactions: Transactions,
        ledger: str,
        batch: Sequence[DeadLetterRecord],
        partitions: dict[str, int],
        number: int,
    ) -> None:
        with transactions.open():  # aborted on error: nothing of this batch is visible
            at = datetime.now(UTC).isoformat(timespec="milliseconds")
            for letter in batch:
                entry = self._entry(letter, partitions, at)
                _redrive(transactions.producer, entry, letter)
                produce(transactions.producer, ledger, entry.key, entry.value(), [])
            self.checkpoint("produced", number)
            transactions.commit()
        self.checkpoint("committed", number)

    def _entry(self, letter: DeadLetterRecord, partitions: dict[str, int], at: str) -> Redriven:
        topic = str(letter.original_topic)
        if topic not in partitions:
            partitions[topic] = partition_count(self.settings, topic)
        original = letter.original_partition
        keep = original if original is not None and original < partitions[topic] else None
        record = letter.record
        return Redriven(
            record.topic, record.partition, record.offset, topic, keep, letter.attempts, at,
            self.run_id,
        )  # fmt: skip

    def _pace(self, started: float, done: int) -> None:
        if self.rate is None:
            return
        ahead = done / self.rate - (time.monotonic() - started)
        if ahead > 0:
            self.stop.wait(ahead)


def _headers(letter: DeadLetterRecord) -> list[tuple[str, bytes | None]]:
    record = letter.record
    at = Origin(record.topic, record.partition, record.offset)
    return redrive_headers(record.headers, at, letter.attempts)


def _redrive(producer: Producer, entry: Redriven, letter: DeadLetterRecord) -> None:
    record = letter.record
    produce(
        producer, entry.to_topic, record.key, record.value, _headers(letter), entry.to_partition
    )

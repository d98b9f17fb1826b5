"""A simulated phase worker, for tests until the real phases exist.

It reads `migration.phase-tasks` (read_committed) and answers each RunPhase
with progress and success (counting BYTES_PER_ROW bytes a row, and naming
SNAPSHOT in extract's) (or, for a source table named `flaky*`, an error on
the first run of `transform`), each PausePhase with PhaseHalted. A live
migration's (`cdc`) sync run reports its lag (LAG_BYTES, LAG_SECONDS,
POSITION) and goes on; its cutover run catches up and succeeds with a
CutoverResult (for a source table named `held*`, it never catches up; for
`drift*`, the first sync run stops on a schema drift). Result ids are
derived from the task, so a task handled twice (after a crash) repeats
results the orchestrator already knows: it drops them.

    python -m tests.support.phase_simulator
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import threading
import time

from confluent_kafka import Consumer, Producer

from config import KafkaNames, Settings, load_settings
from domain import (
    CutoverResult,
    PausePhase,
    PhaseErrored,
    PhaseHalted,
    PhaseProgressed,
    PhaseResult,
    PhaseSucceeded,
    PhaseTask,
    RunPhase,
    SnapshotRef,
    answer_fields,
)
from schemas import RecordError, decode_task, encode
from streams.kafka.clients import consumer_config, producer_config
from streams.kafka.consumed import Consumed

log = logging.getLogger("phase-simulator")
ROWS = 100
BYTES_PER_ROW = 100
SNAPSHOT = SnapshotRef(id="00000003-00000002-1", taken_at="2026-01-01 00:00:00+00", lsn="0/1A2B3C")
LAG_BYTES, LAG_SECONDS, POSITION, FINAL = 8192, 0.75, "0/1A2C00", "0/1A2D00"
FIRST_SYNC_RUN = 6  # after the five phases' runs
DRIFT = "column note added to public.{table}"


def answer(task: PhaseTask) -> list[PhaseResult]:
    """The results a simulated phase worker gives for one task."""
    if isinstance(task, PausePhase):
        return [
            PhaseHalted(result_id=f"{task.task_id}:halted", **answer_fields(task), checkpoint="50")
        ]
    if not isinstance(task, RunPhase):
        return []
    if task.phase in ("sync", "cutover"):
        return _live(task)
    answers = answer_fields(task)
    if task.spec.source_table.startswith("flaky") and task.phase == "transform" and task.run <= 2:
        return [
            PhaseErrored(
                result_id=f"{task.task_id}:error",
                **answers,
                reason="simulated outage",
                checkpoint="40",
            )
        ]
    snapshot = SNAPSHOT if task.phase == "extract" else None
    return [
        PhaseProgressed(
            result_id=f"{task.task_id}:p1",
            **answers,
            rows_done=ROWS // 2,
            rows_total=ROWS,
            checkpoint=str(ROWS // 2),
            bytes_done=ROWS // 2 * BYTES_PER_ROW,
            snapshot=snapshot,
        ),
        PhaseSucceeded(
            result_id=f"{task.task_id}:done",
            **answers,
            rows_done=ROWS,
            score=1.0,
            bytes_done=ROWS * BYTES_PER_ROW,
            snapshot=snapshot,
        ),
    ]


def _live(task: RunPhase) -> list[PhaseResult]:
    """A sync run: its lag, and no end; a cutover run: caught up, then done."""
    answers, table = answer_fields(task), task.spec.source_table
    if task.phase == "sync" and table.startswith("drift") and task.run <= FIRST_SYNC_RUN:
        reason = DRIFT.format(table=table)
        return [
            PhaseErrored(
                result_id=f"{task.task_id}:drift", **answers, reason=reason, kind="schema_drifted"
            )
        ]
    lagging = task.phase == "sync" or table.startswith("held")
    progress = PhaseProgressed(
        result_id=f"{task.task_id}:lag",
        **answers,
        rows_done=ROWS // 10,
        rows_total=0,
        checkpoint=POSITION,
        lag_bytes=LAG_BYTES if lagging else 0,
        lag_seconds=LAG_SECONDS if lagging else 0.0,
        position=POSITION if lagging else FINAL,
    )
    if lagging:
        return [progress]
    frozen = task.cutover is not None and task.cutover.freeze
    result = CutoverResult(
        position=FINAL,
        source_rows=ROWS,
        target_rows=ROWS,
        source_checksum="5f1d7a",
        target_checksum="5f1d7a",
        changes_applied=ROWS // 10,
        rows_verified=ROWS // 20,
        sequences_synced=1,
        frozen=frozen,
    )
    done = PhaseSucceeded(
        result_id=f"{task.task_id}:done", **answers, rows_done=ROWS, cutover=result
    )
    return [progress, done]


def run(settings: Settings, stop: threading.Event, delay: float = 0.0) -> None:
    """Answer tasks `delay` seconds after they arrive (without blocking others)."""
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    consumer = Consumer(consumer_config(settings, f"{settings.kafka.app_id}-phase-simulator"))
    producer = Producer(producer_config(settings))
    consumer.subscribe([names.phase_tasks])
    due: list[tuple[float, int, Consumed]] = []
    try:
        while not stop.is_set():
            for msg in consumer.consume(200, 0.05):
                if msg.error() is None:
                    heapq.heappush(due, (time.monotonic() + delay, len(due), Consumed.of(msg)))
            ready = []
            while due and due[0][0] <= time.monotonic():
                ready.append(heapq.heappop(due)[2])
            for record in ready:
                _handle(record, producer, names)
            if ready and not due:
                # At least once: results out before the tasks' offsets commit;
                # only when nothing is held back, so no held task is skipped.
                producer.flush(30)
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()
        producer.flush(30)


def _handle(record: Consumed, producer: Producer, names: KafkaNames) -> None:
    try:
        task = decode_task(record.value, record.headers)
    except RecordError as exc:
        log.error("undecodable task at %s: %s", record.offset, exc)
        return
    for result in answer(task):
        value, headers = encode(result)
        producer.produce(names.phase_results, value, record.key, headers=headers)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(load_settings(), stop, float(os.environ.get("SIMULATED_PHASE_SECONDS", "0")))


if __name__ == "__main__":
    main()

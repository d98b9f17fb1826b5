"""Assists on a real broker and a real target database: a phase worker (in
this process, in a thread of its own) broadcasts an enlisting run to the other
partitions of phase-tasks, and the pause of that run after it; it runs an
assist it is sent without ever answering for it, stops it on a broadcast pause,
logs its failure, ignores an assist that is stale or whose migration it
runs already (or while it is busy), and starts an owner's run beside an
assist. Extract is replaced by a stand-in that records its runs and
holds each until it is released or stopped."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import psycopg
import pytest
from confluent_kafka import Producer, TopicPartition

from config import KafkaNames, Settings
from domain import (
    CancelPhase,
    MigrationSpec,
    PausePhase,
    PhaseHalted,
    PhaseResult,
    PhaseSucceeded,
    RunPhase,
)
from domain.tasks import PhaseTask
from schemas import decode_result, decode_task, encode
from streams.dataplane import runner
from streams.dataplane.context import Finished, Outcome, PhaseContext, Stopped
from streams.dataplane.worker import PhaseWorker
from streams.kafka import clients
from streams.kafka.reader import read_committed
from tests.support.processes import eventually, group_is_stable
from tests.support.tables import connection_for

pytestmark = pytest.mark.integration

MID = "m-assist"
WORKER = "phase-a"
SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="t",
    source_key="id",
    target_connection="warehouse",
    target_table="t",
)


@dataclass
class StandIn:
    """Extract, replaced: records each run as (run, assisting); the owner's
    enlists; each run holds until released (then finishes) or stopped."""

    fail_assists: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    runs: list[tuple[int, bool]] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)

    async def __call__(self, ctx: PhaseContext) -> Outcome:
        self.runs.append((ctx.task.run, ctx.assisting))
        if ctx.assisting and self.fail_assists:
            raise RuntimeError("chunk 3: no such table")
        if not ctx.assisting:
            await ctx.enlist()
        # `release` is set from the test's thread: polled, not awaited
        while not (ctx.stop.is_set() or self.release.is_set()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.ends.append("stopped" if ctx.stop.is_set() else "finished")
        return Stopped(None) if ctx.stop.is_set() else Finished(7)


@pytest.fixture
def extract(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    stand_in = StandIn()
    monkeypatch.setitem(runner.PHASES, "extract", stand_in)
    return stand_in


@pytest.fixture
def worker(settings: Settings, topics: KafkaNames, target_url: str) -> Iterator[None]:
    """One phase worker: it holds every partition of phase-tasks, and one
    batch at a time (so one run keeps it busy)."""
    both = connection_for(target_url)  # the stand-in reads no source
    connections = {"legacy": both, "warehouse": both}
    mine = settings.replace(
        phase={"worker_id": WORKER, "connections": connections, "concurrency": 1}
    )
    with running(mine) as failed:
        eventually(
            lambda: (
                failed
                or group_is_stable(settings.kafka.bootstrap_servers, topics.phase_worker_group)
            )
        )
        assert not failed, failed
        yield


@contextmanager
def running(settings: Settings) -> Iterator[list[BaseException]]:
    """A phase worker in a thread; what it raised, if it did."""
    stop = threading.Event()
    failed: list[BaseException] = []

    async def work() -> None:
        await PhaseWorker(settings, stop).run()  # its Kafka clients need the running loop

    def serve() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:  # the test fails on it below
            failed.append(exc)

    thread = threading.Thread(target=serve, name="phase-worker", daemon=True)
    thread.start()
    try:
        yield failed
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and not failed, failed


@pytest.fixture
def producer(settings: Settings) -> Iterator[Producer]:
    found = Producer(clients.producer_config(settings))
    yield found
    found.flush(30)


def run(number: int, *, assist: bool = False) -> RunPhase:
    return RunPhase(
        task_id=f"{MID}:{number}",
        migration_id=MID,
        phase="extract",
        run=number,
        spec=SPEC,
        assist=assist,
    )


def pause(number: int, *, assist: bool = False) -> PausePhase:
    return PausePhase(
        task_id=f"{MID}:p{number}", migration_id=MID, phase="extract", run=number, assist=assist
    )


def cancel(number: int, *, assist: bool = False) -> CancelPhase:
    return CancelPhase(
        task_id=f"{MID}:c{number}", migration_id=MID, run=number, spec=SPEC, assist=assist
    )


def cancelled(target_url: str) -> bool:
    with psycopg.connect(target_url) as conn:
        found = conn.execute(
            "SELECT 1 FROM migrator_state.cancelled WHERE migration_id = %s", (MID,)
        ).fetchone()
    return found is not None


def send(producer: Producer, topics: KafkaNames, task: PhaseTask, partition: int) -> None:
    value, headers = encode(task)
    described: list[tuple[str, str | bytes | None]] = [*headers]
    key = task.migration_id.encode()
    producer.produce(topics.phase_tasks, value, key, partition, headers=described)
    producer.flush(30)


def tasks(settings: Settings, topics: KafkaNames, partition: int) -> list[tuple[bytes, PhaseTask]]:
    records = read_committed(settings, topics.phase_tasks, [partition])
    return [(r.key or b"", decode_task(r.value, r.headers)) for r in records]


def results(settings: Settings, topics: KafkaNames) -> list[PhaseResult]:
    records = read_committed(settings, topics.phase_results)
    return [decode_result(r.value, r.headers) for r in records]


def committed(settings: Settings, topics: KafkaNames) -> dict[int, int]:
    """The phase-worker group's committed offset per partition of phase-tasks."""
    consumer = clients.consumer(settings, topics.phase_worker_group)
    try:
        parts = [TopicPartition(topics.phase_tasks, p) for p in range(3)]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
    finally:
        consumer.close()


def test_an_enlisting_run_is_broadcast_to_every_other_partition_and_so_is_its_pause(
    settings: Settings, topics: KafkaNames, extract: StandIn, worker: None, producer: Producer
) -> None:
    send(producer, topics, run(1), partition=0)

    key = MID.encode()
    broadcast = [(key, run(1, assist=True))]
    eventually(lambda: tasks(settings, topics, 1) == tasks(settings, topics, 2) == broadcast)
    # The worker holds those partitions too: it ignores its own run's assists.
    eventually(lambda: committed(settings, topics)[1] == committed(settings, topics)[2] == 1)
    assert extract.runs == [(1, False)]

    send(producer, topics, pause(1), partition=0)

    (halted,) = eventually(lambda: results(settings, topics))
    assert isinstance(halted, PhaseHalted) and halted.run == 1
    paused = [*broadcast, (key, pause(1, assist=True))]
    eventually(lambda: tasks(settings, topics, 1) == tasks(settings, topics, 2) == paused)
    eventually(lambda: committed(settings, topics) == {0: 2, 1: 2, 2: 2})
    assert results(settings, topics) == [halted]


def test_an_assist_runs_the_phase_answers_nothing_and_stops_on_a_broadcast_pause(
    settings: Settings, topics: KafkaNames, extract: StandIn, worker: None, producer: Producer
) -> None:
    send(producer, topics, run(1, assist=True), partition=1)  # as another worker broadcasts it
    eventually(lambda: extract.runs == [(1, True)])

    send(producer, topics, pause(1, assist=True), partition=1)

    eventually(lambda: committed(settings, topics)[1] == 2)
    assert extract.ends == ["stopped"]
    assert results(settings, topics) == []  # no progress, no halt: only the owner answers
    assert (
        tasks(settings, topics, 0) == tasks(settings, topics, 2) == []
    )  # an assist enlists no one


def test_a_failed_assist_is_logged_and_ends_that_assist_only(
    settings: Settings,
    topics: KafkaNames,
    extract: StandIn,
    worker: None,
    producer: Producer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    extract.fail_assists = True
    caplog.set_level(logging.WARNING, logger="streams.dataplane.scheduler")
    send(producer, topics, run(1, assist=True), partition=1)

    eventually(lambda: committed(settings, topics)[1] == 1)
    assert any("assist of run 1 failed" in r.getMessage() for r in caplog.records), caplog.text
    assert "chunk 3: no such table" in caplog.text
    assert results(settings, topics) == []

    send(producer, topics, run(1), partition=0)  # the owner's run of it goes on
    eventually(lambda: extract.runs == [(1, True), (1, False)])
    eventually(
        lambda: committed(settings, topics) == {0: 0, 1: 2, 2: 1}
    )  # its own broadcasts ignored
    extract.release.set()
    (done,) = eventually(lambda: results(settings, topics))
    assert isinstance(done, PhaseSucceeded) and done.rows_done == 7


def test_the_owners_task_starts_beside_an_assist_and_a_stale_assist_is_ignored(
    settings: Settings, topics: KafkaNames, extract: StandIn, worker: None, producer: Producer
) -> None:
    send(producer, topics, run(2, assist=True), partition=1)
    eventually(lambda: extract.runs == [(2, True)])

    send(producer, topics, run(2), partition=0)  # the owner's task reaches this worker

    eventually(lambda: extract.runs == [(2, True), (2, False)])
    eventually(lambda: committed(settings, topics) == {0: 0, 1: 0, 2: 1})  # broadcasts ignored
    assert extract.ends == []  # the assist goes on: stopping it would cut a chunk short
    extract.release.set()
    (done,) = eventually(lambda: results(settings, topics))
    assert isinstance(done, PhaseSucceeded) and done.run == 2
    eventually(lambda: committed(settings, topics) == {0: 1, 1: 2, 2: 1})
    assert extract.ends == ["finished", "finished"]

    send(producer, topics, run(1, assist=True), partition=2)  # older than run 2

    eventually(lambda: committed(settings, topics)[2] == 2)
    assert extract.runs == [(2, True), (2, False)]
    assert results(settings, topics) == [done]


def test_the_cancel_of_an_enlisted_run_is_broadcast_after_it_and_only_the_owner_cleans_up(
    settings: Settings,
    topics: KafkaNames,
    target_url: str,
    extract: StandIn,
    worker: None,
    producer: Producer,
) -> None:
    send(producer, topics, run(1, assist=True), partition=1)  # an assist, cancelled as such
    eventually(lambda: extract.runs == [(1, True)])
    send(producer, topics, cancel(1, assist=True), partition=1)
    eventually(lambda: committed(settings, topics)[1] == 2)
    assert extract.ends == ["stopped"] and not cancelled(target_url)

    send(producer, topics, run(2), partition=0)
    key = MID.encode()
    eventually(lambda: tasks(settings, topics, 2) == [(key, run(2, assist=True))])
    send(producer, topics, cancel(2), partition=0)

    broadcast = [(key, run(2, assist=True)), (key, cancel(2, assist=True))]
    eventually(lambda: tasks(settings, topics, 2) == broadcast)
    eventually(lambda: committed(settings, topics) == {0: 2, 1: 4, 2: 2})
    assert extract.ends == ["stopped", "stopped"] and cancelled(target_url)
    assert results(settings, topics) == []  # a cancel has no answer


def test_a_busy_worker_lets_an_assist_pass(
    settings: Settings, topics: KafkaNames, extract: StandIn, worker: None, producer: Producer
) -> None:
    other = replace(run(5), task_id="m-other:5", migration_id="m-other")
    send(producer, topics, other, partition=0)  # one run: as many as its batch limit
    eventually(lambda: extract.runs == [(5, False)])

    send(producer, topics, run(1, assist=True), partition=1)

    eventually(lambda: committed(settings, topics)[1] == 2)  # + the other run's broadcast
    assert extract.runs == [(5, False)]
    assert results(settings, topics) == []

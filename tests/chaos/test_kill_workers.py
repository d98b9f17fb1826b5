"""Exactly-once under kill -9: many migrations through full lifecycles while
worker processes are SIGKILLed and restarted; then a read_committed check of
the log, as Kafka's own transactional copy test checks its output.

CHAOS_MIGRATIONS (200) and CHAOS_KILLS (10) size the run.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from cli.topics import create_topics
from config import KafkaNames, Settings
from streams.kafka.clients import producer_config
from streams.kafka.reader import read_committed
from tests.support.chaos_driver import Driver, Plan
from tests.support.log_check import check_events, final_status
from tests.support.processes import Processes, eventually, group_is_stable

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]
MIGRATIONS = int(os.environ.get("CHAOS_MIGRATIONS", "200"))
KILLS = int(os.environ.get("CHAOS_KILLS", "10"))
WORKERS = ("w0", "w1", "w2")
QUIET_SECONDS = 30.0


def chaos_settings(settings: Settings, guarantee: str) -> Settings:
    return settings.replace(
        kafka={"topic_partitions": 6}, worker={"processing_guarantee": guarantee}
    )


@pytest.fixture
def cluster(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Settings, Processes]]:
    chosen = chaos_settings(settings, request.param)
    create_topics(chosen)
    procs = Processes(chosen, tmp_path)
    for worker in WORKERS:
        procs.start(worker, "worker", extra_env={"WORKER_ID": worker})
    procs.start("simulator", extra_env={"SIMULATED_PHASE_SECONDS": "0.3"})
    try:
        eventually(
            lambda: group_is_stable(
                chosen.kafka.bootstrap_servers, chosen.kafka.app_id, len(WORKERS)
            ),
            120,
        )
    except AssertionError:
        procs.stop_all()
        logs = {name: procs.log(name)[-2000:] for name in procs.running}
        raise AssertionError(f"the workers did not form a group: {logs}") from None
    yield chosen, procs
    procs.stop_all()


def run_chaos(settings: Settings, procs: Processes) -> tuple[Driver, int]:
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    producer = Producer(producer_config(settings))
    driver = Driver(names, producer, [Plan.for_index(i) for i in range(MIGRATIONS)])
    rng = random.Random(7)
    kills = 0
    next_kill = time.monotonic() + rng.uniform(1, 3)
    driver.start_all()
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline and not (kills >= KILLS and driver.settled(settings)):
        if kills >= KILLS and driver.quiet_for() > QUIET_SECONDS:
            break  # nothing moves any more: what is unsettled is stuck
        driver.react(settings)
        if kills < KILLS and time.monotonic() >= next_kill:
            victim = rng.choice(WORKERS)
            procs.kill(victim)
            procs.start(victim, "worker", extra_env={"WORKER_ID": victim})
            kills += 1
            next_kill = time.monotonic() + rng.uniform(1, 3)
        time.sleep(0.2)
    producer.flush(30)
    return driver, kills


def violations(settings: Settings, driver: Driver) -> list[str]:
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    report = check_events(read_committed(settings, names.events))
    found = list(report.violations)
    for command_id in driver.sent_command_ids():
        if report.decisions(command_id) != 1:
            found.append(f"command {command_id} decided {report.decisions(command_id)} times")
    for plan in driver.plans:
        status = final_status(report, plan.migration_id)
        if status not in plan.expected:
            found.append(f"{plan.migration_id} ({plan.kind}) ended {status}, not {plan.expected}")
    dead = list(read_committed(settings, names.dlq(names.commands)))
    origins = [
        (
            dict(r.headers)["kafka_dlt-original-partition"],
            dict(r.headers)["kafka_dlt-original-offset"],
        )
        for r in dead
    ]
    if len(origins) != len(set(origins)) or len(dead) != driver.invalid_sent:
        found.append(f"{len(dead)} dead letters for {driver.invalid_sent} invalid commands")
    return found


@pytest.mark.parametrize("cluster", ["exactly_once"], indirect=True)
def test_exactly_once_survives_workers_killed_with_sigkill(
    cluster: tuple[Settings, Processes],
) -> None:
    settings, procs = cluster

    driver, kills = run_chaos(settings, procs)

    assert kills >= KILLS
    problems = violations(settings, driver)
    assert problems == [], "\n".join(problems[:40])


@pytest.mark.parametrize("cluster", ["at_least_once"], indirect=True)
def test_the_same_check_catches_at_least_once(cluster: tuple[Settings, Processes]) -> None:
    """The check can fail: without transactions, kill -9 repeats events."""
    settings, procs = cluster

    driver, kills = run_chaos(settings, procs)

    problems = violations(settings, driver)
    report = os.environ.get("CHAOS_REPORT")
    if report:
        Path(report).write_text(json.dumps(problems[:200], indent=1))
    assert kills >= KILLS
    assert any("sequences" in p or "decided" in p for p in problems), problems[:10]


def react_for(driver: Driver, settings: Settings, seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        driver.react(settings)
        time.sleep(0.2)


def drive_until_settled(
    driver: Driver, settings: Settings, procs: Processes, restart: str | None = None
) -> None:
    while not driver.settled(settings) and driver.quiet_for() < QUIET_SECONDS:
        if restart and procs.running[restart].poll() is not None:
            procs.start(restart, "worker", extra_env={"WORKER_ID": restart})
        react_for(driver, settings, 0.5)


def faulty_worker(settings: Settings, procs: Processes, fault: str) -> Driver:
    """Replace w0 by one that hits itself with `fault` mid-stream; start work."""
    assert procs.stop("w0") == 0
    procs.start(
        "w0",
        "worker",
        extra_env={"WORKER_ID": "w0", "FAULT_WORKER": fault, "FAULT_WORKER_BATCH": "5"},
    )
    eventually(
        lambda: group_is_stable(
            settings.kafka.bootstrap_servers, settings.kafka.app_id, len(WORKERS)
        ),
        120,
    )
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    driver = Driver(
        names, Producer(producer_config(settings)), [Plan.for_index(i) for i in range(100)]
    )
    driver.start_all()
    return driver


@pytest.mark.parametrize("cluster", ["exactly_once"], indirect=True)
@pytest.mark.parametrize("point", ["produce", "offsets", "commit"])
def test_a_kill_at_each_point_of_a_transaction_loses_and_repeats_nothing(
    cluster: tuple[Settings, Processes], point: str
) -> None:
    settings, procs = cluster
    driver = faulty_worker(settings, procs, f"kill_after_{point}")

    eventually(lambda: procs.running["w0"].poll() is not None, 60)
    drive_until_settled(driver, settings, procs, restart="w0")

    problems = violations(settings, driver)
    assert problems == [], "\n".join(problems[:40])


@pytest.mark.parametrize("cluster", ["exactly_once"], indirect=True)
def test_a_worker_stalled_mid_transaction_past_its_timeouts_is_fenced(
    cluster: tuple[Settings, Processes],
) -> None:
    """A zombie: SIGSTOP with a transaction open (outputs written, offsets not
    sent), past the session and transaction timeouts, then SIGCONT. Its
    partitions have moved; it must not commit what it had in flight."""
    settings, procs = cluster
    driver = faulty_worker(settings, procs, "stop_after_produce")
    eventually(lambda: procs.status("w0") == "T", 60)  # it stopped itself mid-transaction

    stalled = (
        max(settings.worker.session_timeout_ms, settings.worker.transaction_timeout_ms) + 5000
    ) / 1000
    react_for(driver, settings, stalled)
    procs.thaw("w0")
    drive_until_settled(driver, settings, procs, restart="w0")

    problems = violations(settings, driver)
    assert problems == [], "\n".join(problems[:40])
    assert "orchestrator w0" in procs.log("w0")

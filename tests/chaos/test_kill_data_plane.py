"""Exactly-once, end to end, with real tables: many migrations while
orchestrator workers and phase workers are SIGKILLed and restarted (and some
migrations paused and resumed); then the event log is checked read_committed
(sequences 1..N, each input decided once), every target table must equal its
source, and a trigger on every target counts each key's writes: exactly one.

CHAOS_TABLES (16) and CHAOS_KILLS (8) size the run.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cli.topics import create_topics
from config import KafkaNames, Settings
from streams.kafka.reader import read_committed
from tests.support.data_plane import DataPlane, connections_env, spec
from tests.support.log_check import check_events, final_status
from tests.support.processes import Processes, eventually, group_is_stable
from tests.support.stack import Stack
from tests.support.tables import CUSTOMERS, connection_for, create_customers, fresh_database

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]
TABLES = int(os.environ.get("CHAOS_TABLES", "16"))
KILLS = int(os.environ.get("CHAOS_KILLS", "8"))
WORKERS = ("w0", "w1")
PHASE_WORKERS = ("p0", "p1")
SLOW = {"PHASE_CONCURRENCY": "1"}  # one batch at a time: work long enough to be hit
COUNT_WRITES = """
CREATE TABLE IF NOT EXISTS writes (tbl text, id bigint, n int NOT NULL, PRIMARY KEY (tbl, id));
CREATE OR REPLACE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO writes VALUES (TG_TABLE_NAME, NEW.id, 1)
  ON CONFLICT (tbl, id) DO UPDATE SET n = writes.n + 1; RETURN NEW; END $$;
"""


@pytest.fixture
def databases(stack: Stack, unique: str) -> Iterator[tuple[str, str]]:
    with (
        fresh_database(stack.database_url, f"src_{unique}") as source,
        fresh_database(stack.database_url, f"tgt_{unique}") as target,
    ):
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(COUNT_WRITES)
        for i in range(TABLES):
            create_customers(source, 3000 + 137 * i, table=f"t{i}")
            with psycopg.connect(target, autocommit=True) as conn:
                conn.execute(CUSTOMERS.replace("customers", f"t{i}", 1))
                conn.execute(
                    f"CREATE TRIGGER count_writes AFTER INSERT OR UPDATE ON t{i}"
                    " FOR EACH ROW EXECUTE FUNCTION count_write()"
                )
        yield source, target


@pytest.fixture
def plane(settings: Settings, tmp_path: Path, databases: tuple[str, str]) -> Iterator[DataPlane]:
    chosen = settings.replace(kafka={"topic_partitions": 6})
    names = KafkaNames(app_id=chosen.kafka.app_id, prefix=chosen.kafka.topic_prefix)
    create_topics(chosen)
    source, target = databases
    env = connections_env({"legacy": connection_for(source), "warehouse": connection_for(target)})
    procs = Processes(chosen, tmp_path)
    for name in WORKERS:
        procs.start(name, "worker", {"WORKER_ID": name})
    for name in PHASE_WORKERS:
        procs.start(name, "phase-worker", {**env, **SLOW, "PHASE_WORKER_ID": name})
    bootstrap = chosen.kafka.bootstrap_servers
    eventually(lambda: group_is_stable(bootstrap, chosen.kafka.app_id, len(WORKERS)), 120)
    eventually(lambda: group_is_stable(bootstrap, names.phase_worker_group, 2), 120)
    yield DataPlane(chosen, names, procs)
    procs.stop_all()


def restart(plane: DataPlane, victim: str, env: dict[str, str]) -> None:
    plane.procs.kill(victim)
    if victim in WORKERS:
        plane.procs.start(victim, "worker", {"WORKER_ID": victim})
    else:
        plane.procs.start(victim, "phase-worker", {**env, **SLOW, "PHASE_WORKER_ID": victim})


def test_migrations_survive_kill_9_of_every_kind_of_worker(
    plane: DataPlane, databases: tuple[str, str]
) -> None:
    source, target = databases
    env = connections_env({"legacy": connection_for(source), "warehouse": connection_for(target)})
    ids = [f"m-{i}" for i in range(TABLES)]
    for i, mid in enumerate(ids):
        plane.start(
            mid, spec(source_table=f"t{i}", target_table=f"t{i}", batch_size=50, parallelism=2)
        )
    rng = random.Random(11)
    paused: set[str] = set()
    kills, deadline = 0, time.monotonic() + 600
    busy_at_kill: list[int] = []  # migrations not yet completed when each kill hit
    while time.monotonic() < deadline:
        statuses = {mid: plane.state(mid).status.value for mid in ids}
        busy = sum(s != "COMPLETED" for s in statuses.values())
        if not busy:
            break
        for mid, status in statuses.items():
            if status == "RUNNING" and mid not in paused and rng.random() < 0.15:
                plane.pause(mid)
                paused.add(mid)
            elif status == "PAUSED":
                plane.resume(mid)
            elif status == "FAILED":
                plane.retry(mid)
        if kills < KILLS:  # kill only while there is work to hit
            busy_at_kill.append(busy)
            restart(plane, rng.choice(WORKERS + PHASE_WORKERS), env)
            kills += 1
        time.sleep(rng.uniform(0.7, 1.5))

    report = check_events(read_committed(plane.settings, plane.names.events))
    assert report.violations == []
    assert {mid: final_status(report, mid) for mid in ids} == dict.fromkeys(ids, "COMPLETED")
    print(f"kills hit with {busy_at_kill} migrations unfinished; paused {len(paused)}")
    assert kills >= KILLS // 2, busy_at_kill  # the work outlasted most of the kills
    with psycopg.connect(source) as src, psycopg.connect(target) as tgt:
        for i in range(TABLES):
            digest = f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM t{i} AS t"
            assert src.execute(digest).fetchone() == tgt.execute(digest).fetchone(), f"t{i}"
        writes = tgt.execute("SELECT n, count(*) FROM writes GROUP BY n").fetchall()
        expected_rows = sum(3000 + 137 * i for i in range(TABLES))
        assert writes == [(1, expected_rows)]

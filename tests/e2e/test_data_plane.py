"""Migrations of real tables through the running processes: an orchestrator
worker and phase workers, real Kafka, real PostgreSQL databases."""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from config import KafkaNames, Settings
from config.connections import Connection
from domain import PhaseCompleted, PhaseProgressRecorded, SnapshotRef, replay
from streams.kafka.reader import read_committed
from tests.support.data_plane import data_plane, spec
from tests.support.processes import eventually
from tests.support.stack import Stack, free_port
from tests.support.tables import connection_for, create_customers, fresh_database

pytestmark = pytest.mark.e2e

MAPPING = {
    "full_name": {"from": "name", "trim": True},
    "email": {"case": "upper"},
    "country": {"map": {"de": "DE", "fr": "FR"}, "default": "--"},
    "label": {"concat": ["country", "id"], "separator": "-"},
    "balance": {"cast": "text", "default": "n/a"},
    "avatar": None,
}


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        yield url


@pytest.fixture
def target_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"tgt_{unique}") as url:
        yield url


@pytest.fixture
def secret(unique: str) -> str:
    return f"pw-{unique}-never-shown"


@pytest.fixture
def connections(source_url: str, target_url: str, secret: str) -> dict[str, Connection]:
    # Trust authentication ignores the password, but every process holds it.
    return {
        "legacy": connection_for(source_url, password=secret),
        "warehouse": connection_for(target_url, password=secret),
    }


def expected_row(row: dict[str, Any]) -> dict[str, Any]:
    """MAPPING, computed in Python from one source row."""
    out = {k: v for k, v in row.items() if k not in ("name", "avatar")}
    out["email"] = row["email"].upper() if row["email"] is not None else None
    country = row["country"]
    out["country"] = {"de": "DE", "fr": "FR"}.get(country, country) if country else "--"
    out["balance"] = str(row["balance"]) if row["balance"] is not None else "n/a"
    out["full_name"] = row["name"].strip() if row["name"] is not None else None
    out["label"] = "-".join(str(v) for v in (row["country"], row["id"]) if v is not None)
    return out


def fetch(url: str, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(query)
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def normalised(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


def test_a_100k_row_table_arrives_transformed_row_for_row(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
    secret: str,
) -> None:
    create_customers(source_url, 100_000)
    rules = [{"rule": "not_null", "column": "email"}, {"rule": "unique", "column": "id"}]
    with data_plane(settings, topics, tmp_path, connections) as plane:
        plane.start(
            "m-big",
            spec(mapping=MAPPING, rules=rules, min_score=0.9, batch_size=5000, parallelism=3),
        )
        state = plane.wait_for("m-big", "COMPLETED", "FAILED", timeout=240)
        assert state.status.value == "COMPLETED", state.reason
        events = plane.events()["m-big"]
        logs = [plane.procs.log(name) for name in plane.procs.running]

    source = fetch(source_url, "SELECT * FROM customers ORDER BY id")
    target = fetch(target_url, "SELECT * FROM customers ORDER BY id")
    assert len(target) == len(source) == 100_000
    mismatched = [
        (want, got)
        for want, got in zip(map(expected_row, source), map(normalised, target), strict=True)
        if want != got
    ]
    assert not mismatched, mismatched[:3]
    # 1 in 13 emails is NULL: the score is the share of rows keeping every rule.
    assert state.score == pytest.approx(1 - (100_000 // 13) / 100_000)
    # Every chunk of extract was read in one snapshot, and its events name it.
    chunks = fetch(
        target_url,
        "SELECT position->'snapshot' AS snapshot FROM migrator_state.checkpoints"
        " WHERE migration_id = 'm-big' AND phase = 'extract'",
    )
    assert len(chunks) == 20  # 100,000 rows, 5,000 a chunk
    assert all(c["snapshot"] == chunks[0]["snapshot"] for c in chunks)
    assert chunks[0]["snapshot"]["id"] and chunks[0]["snapshot"]["lsn"]
    named = {k: v for k, v in chunks[0]["snapshot"].items() if k != "xids"}
    carried = {
        e.snapshot
        for e in events
        if isinstance(e, PhaseProgressRecorded | PhaseCompleted) and e.phase == "extract"
    }
    assert carried == {SnapshotRef(**named)}
    # The connections' secret is in no event, no log line, and not in staging.
    assert all(secret not in json.dumps(e.__dict__, default=str) for e in events)
    assert all(secret not in log for log in logs)
    leftovers = fetch(
        target_url, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'migrator_staging'"
    )
    assert leftovers == [{"n": 0}]


def test_pause_mid_extract_then_resume_completes_equal(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
) -> None:
    create_customers(source_url, 30_000)
    # one chunk at a time: an extract long enough to pause; its snapshot kept
    # by a keeper process, which a table this small would not get by default
    slow = {"PHASE_CONCURRENCY": "1", "PHASE_SNAPSHOT_KEEPER_MIN_BYTES": "0"}
    with data_plane(settings, topics, tmp_path, connections, phase_env=slow) as plane:
        plane.producer.produce(topics.phase_tasks, b"not a task", b"m-pause")  # a poison task
        plane.start("m-pause", spec(batch_size=100, parallelism=2))
        eventually(lambda: copied_rows(target_url, "m-pause") > 0, timeout=120)
        plane.pause("m-pause")
        paused = plane.wait_for("m-pause", "PAUSED")
        assert paused.phase == "extract"
        held = copied_rows(target_url, "m-pause")
        assert 0 < held < 30_000
        plane.resume("m-pause")
        plane.wait_for("m-pause", "COMPLETED")
        (dead,) = read_committed(settings, topics.dlq(topics.phase_tasks))

    assert table_digest(source_url) == table_digest(target_url)
    # resumed in the snapshot it began in; the pause cancels the one chunk in
    # flight (PHASE_CONCURRENCY 1), which rolls back and is copied again
    assert_chunks_tile(target_url, "m-pause", 30_000, redone=1)
    headers = dict(dead.headers)
    assert dead.value == b"not a task" and dead.key == b"m-pause"
    assert headers["kafka_dlt-original-topic"] == topics.phase_tasks.encode()
    assert (
        headers["migrator-attempts"] == b"1"
        and b"RecordError" in headers["kafka_dlt-exception-fqcn"]
    )


SLOW_REFS = """
CREATE TABLE refs (id bigint PRIMARY KEY);
INSERT INTO refs VALUES (1);
CREATE FUNCTION slow() RETURNS boolean LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN PERFORM pg_sleep(3600); RETURN true; END $$;
CREATE VIEW slow_refs AS SELECT id FROM refs WHERE slow();
"""


def slow_rule_running(url: str) -> int:
    """Backends of the target database running a statement over slow_refs."""
    (row,) = fetch(
        url,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND query LIKE '%slow_refs%' AND pid <> pg_backend_pid()",
    )
    return int(row["n"])


def test_pause_and_cancel_stop_a_validation_statement_in_flight(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
) -> None:
    create_customers(source_url, 100)
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute(SLOW_REFS)
    rule = {"rule": "foreign_key", "column": "id", "table": "slow_refs", "references": "id"}
    # Only the pause or the cancel can end the rule's statement.
    patient = {"PHASE_VALIDATION_TIMEOUT_SECONDS": "3600"}
    with data_plane(settings, topics, tmp_path, connections, phase_env=patient) as plane:
        plane.start("m-slow", spec(rules=(rule,), min_score=0.0))
        eventually(lambda: slow_rule_running(target_url) == 1, timeout=120)

        plane.pause("m-slow")
        paused = plane.wait_for("m-slow", "PAUSED", timeout=60)
        eventually(lambda: slow_rule_running(target_url) == 0, timeout=30)
        plane.resume("m-slow")
        eventually(lambda: slow_rule_running(target_url) == 1, timeout=60)
        plane.cancel("m-slow")
        plane.wait_for("m-slow", "CANCELLED", timeout=60)
        eventually(lambda: slow_rule_running(target_url) == 0, timeout=30)

    assert paused.phase == "validate"


def test_a_killed_phase_worker_is_replaced_and_no_row_is_written_twice(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
) -> None:
    create_customers(source_url, 30_000)
    count_writes(target_url)
    slow = {"PHASE_CONCURRENCY": "1", "PHASE_SNAPSHOT_KEEPER_MIN_BYTES": "0"}
    with data_plane(settings, topics, tmp_path, connections, 2, slow) as plane:
        plane.start("m-kill", spec(batch_size=100, parallelism=2))
        eventually(lambda: copied_rows(target_url, "m-kill") > 0, timeout=120)
        holder = last_writer(target_url)
        plane.procs.kill(holder)  # the worker running the extract dies mid-chunk
        del plane.procs.running[holder]
        state = plane.wait_for("m-kill", "COMPLETED", "FAILED", timeout=180)
        assert state.status.value == "COMPLETED", state.reason
        assert last_writer(target_url) != holder

    assert table_digest(source_url) == table_digest(target_url)
    writes = fetch(target_url, "SELECT n, count(*) AS keys FROM writes GROUP BY n")
    assert writes == [{"n": 1, "keys": 30_000}]
    # at most the chunk in flight (PHASE_CONCURRENCY 1) was copied again
    assert_chunks_tile(target_url, "m-kill", 30_000, redone=1)


def test_one_tables_chunks_are_copied_by_both_phase_workers_each_once(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
) -> None:
    create_customers(source_url, 200_000)
    with data_plane(settings, topics, tmp_path, connections, phase_workers=2) as plane:
        plane.start("m-group", spec(batch_size=1000, parallelism=2))
        state = plane.wait_for("m-group", "COMPLETED", "FAILED", timeout=300)
        assert state.status.value == "COMPLETED", state.reason  # reconcile passed

    planned = fetch(
        target_url,
        "SELECT count(*) AS n FROM migrator_state.checkpoints"
        " WHERE migration_id = 'm-group' AND phase = 'extract'",
    )[0]["n"]
    chunks = fetch(
        target_url,
        "SELECT slice, rows, worker FROM migrator_state.batches"
        " WHERE migration_id = 'm-group' AND phase = 'extract'",
    )
    assert planned > 100
    assert sorted(c["slice"] for c in chunks) == list(range(planned))  # each chunk once
    assert sum(c["rows"] for c in chunks) == 200_000
    assert {c["worker"] for c in chunks} == {"phase-0", "phase-1"}
    assert table_digest(source_url) == table_digest(target_url)


def copied_rows(target_url: str, migration_id: str) -> int:
    rows = (
        fetch(
            target_url,
            "SELECT coalesce(sum(rows_done), 0) AS n FROM migrator_state.checkpoints"
            f" WHERE migration_id = '{migration_id}' AND phase = 'extract'",
        )
        if has_state(target_url)
        else [{"n": 0}]
    )
    return int(rows[0]["n"])


def last_writer(url: str) -> str:
    rows = fetch(
        url, "SELECT worker FROM migrator_state.batches ORDER BY committed_at DESC LIMIT 1"
    )
    return str(rows[0]["worker"])


def has_state(url: str) -> bool:
    found = fetch(url, "SELECT to_regclass('migrator_state.checkpoints') IS NOT NULL AS ok")
    return bool(found[0]["ok"])


def table_digest(url: str, table: str = "customers") -> tuple[int, str]:
    rows = fetch(
        url,
        f"SELECT count(*) AS n, md5(string_agg(c::text, '|' ORDER BY c.id)) AS d FROM {table} AS c",
    )
    return rows[0]["n"], rows[0]["d"]


def count_writes(url: str) -> None:
    """The target table, made in advance with a trigger that counts every
    insert or update per key."""
    from tests.support.tables import CUSTOMERS

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CUSTOMERS)
        conn.execute("CREATE TABLE writes (id bigint PRIMARY KEY, n int NOT NULL)")
        conn.execute(
            "CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " INSERT INTO writes VALUES (NEW.id, 1)"
            " ON CONFLICT (id) DO UPDATE SET n = writes.n + 1; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER count_writes AFTER INSERT OR UPDATE ON customers"
            " FOR EACH ROW EXECUTE FUNCTION count_write()"
        )


def assert_chunks_tile(url: str, migration_id: str, total: int, redone: int) -> None:
    """Extract's batch log: each chunk committed once, each starting where the
    one before it ends, all of them every row once, in one snapshot; and at
    most `redone` chunk attempts beyond one per chunk."""
    chunks = fetch(
        url,
        "SELECT slice, after_key, upto_key, rows FROM migrator_state.batches"
        f" WHERE migration_id = '{migration_id}' AND phase = 'extract' ORDER BY slice",
    )
    assert [c["slice"] for c in chunks] == list(range(len(chunks)))
    assert chunks[0]["after_key"] is None and chunks[-1]["upto_key"] is None
    for before, after in itertools.pairwise(chunks):
        assert after["after_key"] == before["upto_key"], (before, after)
    assert sum(c["rows"] for c in chunks) == total
    snapshots = fetch(
        url,
        "SELECT DISTINCT position->'snapshot'->>'id' AS id FROM migrator_state.checkpoints"
        f" WHERE migration_id = '{migration_id}' AND phase = 'extract'",
    )
    assert len(snapshots) == 1
    (attempts,) = fetch(
        url,
        "SELECT count(*) AS n FROM migrator_state.chunk_runs"
        f" WHERE migration_id = '{migration_id}' AND phase = 'extract'",
    )
    assert len(chunks) <= attempts["n"] <= len(chunks) + redone


def test_a_target_outage_fails_the_phase_and_retry_resumes_it(
    stack: Stack,
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
) -> None:
    create_customers(source_url, 30_000)
    count_writes(target_url)
    port = free_port()
    env = {
        "PHASE_CONCURRENCY": "1",
        "PHASE_SNAPSHOT_KEEPER_MIN_BYTES": "0",
        "PHASE_RETRY_ATTEMPTS": "4",
        "PHASE_RETRY_BUDGET_SECONDS": "8",
        "PHASE_RETRY_MAX_SECONDS": "0.5",
        "PHASE_BREAKER_FAILURE_THRESHOLD": "3",
        "PHASE_BREAKER_RESET_SECONDS": "3",
        "PHASE_POOL_TIMEOUT_SECONDS": "2",
        "PHASE_METRICS_PORT": str(port),
    }
    target_db = str(conninfo_to_dict(target_url)["dbname"])
    with data_plane(settings, topics, tmp_path, connections, phase_env=env) as plane:
        plane.start("m-outage", spec(batch_size=100))
        eventually(lambda: copied_rows(target_url, "m-outage") > 0, timeout=120)
        with psycopg.connect(stack.database_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{target_db}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND usename = current_user",
                (target_db,),
            )
        failed = plane.wait_for("m-outage", "FAILED", "COMPLETED")
        assert failed.status.value == "FAILED" and failed.phase == "extract"
        reason = failed.reason or ""
        assert "warehouse: database is not accepting connections" in reason, reason
        assert "not currently accepting connections" in reason, reason
        assert "circuit breaker" not in reason, reason  # an open breaker only delays tries
        assert 'migrator_breaker_state{connection="warehouse"} 2.0' in scrape(port)

        with psycopg.connect(stack.database_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{target_db}" ALLOW_CONNECTIONS true')
        held = copied_rows(target_url, "m-outage")
        plane.retry("m-outage")
        plane.wait_for("m-outage", "COMPLETED")
        assert 'migrator_breaker_state{connection="warehouse"} 0.0' in scrape(port)

    assert 0 < held < 30_000
    assert table_digest(source_url) == table_digest(target_url)
    assert fetch(target_url, "SELECT n, count(*) AS keys FROM writes GROUP BY n") == [
        {"n": 1, "keys": 30_000}
    ]
    # the retry went on in the snapshot (its keeper outlived the outage); the
    # chunk in flight when the target went away was copied again
    assert_chunks_tile(target_url, "m-outage", 30_000, redone=1)


def test_a_hundred_small_migrations_at_once_all_complete(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
) -> None:
    count = 100
    for i in range(count):
        create_customers(source_url, 200 + i, table=f"t{i}")
    with data_plane(settings, topics, tmp_path, connections, phase_workers=2) as plane:
        for i in range(count):
            plane.start(f"m-{i}", spec(source_table=f"t{i}", target_table=f"t{i}", batch_size=50))

        def finished() -> dict[str, str] | None:
            events = plane.events()
            states = [replay(f"m-{i}", events.get(f"m-{i}", [])) for i in range(count)]
            statuses = {
                f"m-{i}": f"{state.status.value} {state.reason or ''}".strip()
                for i, state in enumerate(states)
            }
            done = all(state.status.value in ("COMPLETED", "FAILED") for state in states)
            return statuses if done else None

        statuses = eventually(finished, timeout=300, every=2)

    assert set(statuses.values()) == {"COMPLETED"}, {
        m: s for m, s in statuses.items() if s != "COMPLETED"
    }
    for i in range(count):
        assert table_digest(source_url, f"t{i}") == table_digest(target_url, f"t{i}")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()

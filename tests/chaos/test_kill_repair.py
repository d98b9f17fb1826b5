"""A repair is applied exactly once when its phase worker is SIGKILLed in
the middle of it: the repair's transaction is held up (the target table
locked behind its back) while it deletes, the worker is killed, a new one
takes the task over and waits for the dead one's transaction to end; then a
trigger on the target shows each repaired key written once, and the target
equals the source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from config import KafkaNames, Settings
from domain import DiffMigration, DiffRecorded, RepairMigration
from tests.support.data_plane import connections_env, data_plane, spec
from tests.support.processes import eventually
from tests.support.stack import Stack
from tests.support.tables import CUSTOMERS, connection_for, create_customers, fresh_database

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]
MID = "m-repair-kill"
COUNT_WRITES = """
CREATE TABLE writes (id bigint PRIMARY KEY, n int NOT NULL);
CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO writes VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = writes.n + 1;
  RETURN NEW; END $$;
CREATE TRIGGER count_writes AFTER INSERT OR UPDATE ON customers
  FOR EACH ROW EXECUTE FUNCTION count_write();
"""
WAITING_DELETE = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM%customers%'"
)


@pytest.fixture
def databases(stack: Stack, unique: str) -> Iterator[tuple[str, str]]:
    with (
        fresh_database(stack.database_url, f"src_{unique}") as source,
        fresh_database(stack.database_url, f"tgt_{unique}") as target,
    ):
        create_customers(source, 20_000)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(CUSTOMERS)
            conn.execute(COUNT_WRITES)
        yield source, target


def digest(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), sum(hash_record_extended(c.*, 0))::text FROM customers AS c"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def scalar(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def test_a_repair_killed_mid_transaction_is_applied_once_by_its_successor(
    settings: Settings, topics: KafkaNames, tmp_path: Path, databases: tuple[str, str]
) -> None:
    source, target = databases
    connections = {"legacy": connection_for(source), "warehouse": connection_for(target)}
    env = {**connections_env(connections), "PHASE_WORKER_ID": "phase-0"}
    with data_plane(settings, topics, tmp_path, connections) as plane:
        plane.start(MID, spec(on_existing="replace"))
        plane.wait_for(MID, "COMPLETED", timeout=180)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("UPDATE customers SET name = 'changed' WHERE id IN (3, 17000)")
            conn.execute("DELETE FROM customers WHERE id IN (40, 19999)")
            conn.execute("INSERT INTO customers (id, name) VALUES (50000, 'extra')")
            conn.execute("TRUNCATE writes")
        plane.send(DiffMigration(command_id="c-diff", migration_id=MID))
        assert plane.wait_for(MID, "FAILED").differing == 5

        with psycopg.connect(target) as lock:
            lock.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
            plane.send(RepairMigration(command_id="c-repair", migration_id=MID))
            eventually(lambda: scalar(target, WAITING_DELETE) == 1, timeout=120)
            plane.procs.kill("phase-0")  # mid-transaction: the dead one's backend holds on
            plane.procs.start("phase-0", "phase-worker", env)
            lock.commit()  # the dead one's DELETE goes on, then its transaction ends

        done = plane.wait_for(MID, "COMPLETED", "FAILED", timeout=240)
        diffs = [e for e in plane.events()[MID] if isinstance(e, DiffRecorded)]

    assert done.status.value == "COMPLETED", done.reason
    assert [d.differing for d in diffs] == [0, 5, 0]  # reconcile, diff, after the repair
    assert digest(target) == digest(source)
    with psycopg.connect(target) as conn:
        writes = conn.execute("SELECT id, n FROM writes ORDER BY id").fetchall()
    assert writes == [(3, 1), (40, 1), (17000, 1), (19999, 1)]  # once each, nothing else

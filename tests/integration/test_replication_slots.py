"""The migrations' replication slots as an operator sees them (ops.slots,
ops.slot_gauges, `migrator slots`), on a cluster of the test's own with
wal_level=logical and real logical slots (PostgreSQL's test_decoding)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from cli.main import app
from config.connections import Connection
from domain.live import slot_name
from ops import slot_gauges
from ops.slots import slot_report
from projections.schema import sql_files
from tests.support.data_plane import connections_env
from tests.support.pg_cluster import Cluster
from tests.support.stack import free_port
from tests.support.tables import connection_for

pytestmark = pytest.mark.integration
WRITES = (
    "CREATE TABLE IF NOT EXISTS t (x text);"
    " INSERT INTO t SELECT repeat('x', 1000) FROM generate_series(1, 2000)"
)
WRITTEN = 1_000_000  # at least this much WAL: 2000 rows of 1000 bytes


@pytest.fixture
def source(crashable: Cluster, unique: str) -> Iterator[str]:
    """A database on a logical-level cluster, with its slots dropped afterwards.
    The listing is of the whole cluster (a slot anywhere keeps WAL), and the
    cluster is this test process's own: a slot an earlier test left, and no
    process holds, is dropped first."""
    with crashable.database(f"slots_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE NOT active"
            )
        yield url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = current_database()"
            )


def make_slot(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (name,))


def write(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WRITES)


def away() -> Connection:
    return Connection(port=free_port(), database="nowhere", user="nobody")


def test_a_migrations_slot_is_listed_with_the_wal_it_keeps(source: str, unique: str) -> None:
    slot, other = f"migrator_m_{unique}", f"other_{unique}"
    make_slot(source, slot)
    make_slot(source, other)
    write(source)

    report = slot_report({"legacy": connection_for(source)})

    (found,) = [s for s in report.slots if s.slot == slot]
    assert (found.connection, found.plugin, found.active) == ("legacy", "test_decoding", False)
    assert found.retained_bytes >= WRITTEN  # the rows written since it was made
    assert found.lag_bytes > 0
    assert other not in {s.slot for s in report.slots}  # not a migration's
    assert report.unreachable == {}


def test_a_database_that_cannot_be_read_is_named_not_skipped(source: str) -> None:
    report = slot_report({"legacy": connection_for(source), "gone": away()})

    assert set(report.unreachable) == {"gone"}
    assert report.unreachable["gone"]


def test_the_gauge_follows_the_slots_and_forgets_a_dropped_one(source: str, unique: str) -> None:
    slot = f"migrator_g_{unique}"
    make_slot(source, slot)
    write(source)
    connections = {"legacy": connection_for(source)}

    slot_gauges.refresh(connections)
    kept = REGISTRY.get_sample_value(
        "migrator_cdc_slot_retained_bytes", {"connection": "legacy", "slot": slot}
    )
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    slot_gauges.refresh(connections)
    gone = REGISTRY.get_sample_value(
        "migrator_cdc_slot_retained_bytes", {"connection": "legacy", "slot": slot}
    )

    assert kept is not None and kept >= WRITTEN
    assert gone is None


def test_each_slot_names_its_migration_and_one_no_live_migration_owns_is_left_behind(
    source: str, unique: str
) -> None:
    live, done = f"m-live-{unique}", f"m-done-{unique}"
    for name in (slot_name(live), slot_name(done), f"migrator_stray_{unique}"):
        make_slot(source, name)
    statuses = {live: "SYNCING", done: "COMPLETED"}

    report = slot_report({"legacy": connection_for(source)}, statuses)

    found = {s.slot: (s.migration_id, s.migration_status, s.left_behind) for s in report.slots}
    assert found == {
        slot_name(live): (live, "SYNCING", False),
        slot_name(done): (done, "COMPLETED", True),
        f"migrator_stray_{unique}": (None, None, True),
    }


def test_migrator_slots_shows_whose_each_is_and_says_when_one_is_left_behind(
    source: str, unique: str, database_url: str
) -> None:
    mid = f"m-cli-{unique}"
    read_model(database_url, {mid: "SYNCING"})
    make_slot(source, slot_name(mid))
    runner = CliRunner()
    legacy = {"legacy": connection_for(source)}
    env = {**connections_env(legacy), "DATABASE_URL": database_url, "COLUMNS": "250"}

    listed = runner.invoke(app, ["slots", "--json"], env=env)
    table = runner.invoke(app, ["slots"], env=env)
    make_slot(source, f"migrator_stray_{unique}")
    stray = runner.invoke(app, ["slots"], env=env)
    failing = runner.invoke(app, ["slots"], env={**env, **connections_env({**legacy, "x": away()})})
    unset = runner.invoke(app, ["slots"], env={"PHASE_CONNECTIONS": "{}"})

    assert listed.exit_code == 0, listed.output
    (slot,) = json.loads(listed.stdout)["slots"]
    assert (slot["slot"], slot["migration_id"], slot["left_behind"]) == (slot_name(mid), mid, False)
    assert table.exit_code == 0 and f"{mid} (SYNCING)" in table.stdout
    assert stray.exit_code == 3 and "unknown: left behind" in stray.stdout
    assert failing.exit_code == 1 and "unreachable" in failing.stdout
    assert unset.exit_code == 1 and "no databases configured" in unset.stderr


def read_model(url: str, statuses: dict[str, str]) -> None:
    """A read model holding live migrations in these statuses."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _, sql in sql_files():
            conn.execute(sql.encode())
        for mid, status in statuses.items():
            conn.execute(
                "INSERT INTO migrations (migration_id, status, version, spec, created_at,"
                " updated_at) VALUES (%s, %s, 9, %s, now(), now())",
                (mid, status, json.dumps({"cdc": True})),
            )

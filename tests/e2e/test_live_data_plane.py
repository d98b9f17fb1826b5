"""A live migration end to end with the real data plane: an orchestrator
worker and a phase worker as processes, real Kafka, a source in a cluster
with wal_level=logical written to during the copy and the sync, the target
in the stack's. Started with `cdc`, it reaches SYNCING with its lag, is cut
over with the source frozen, and ends COMPLETED with the cutover's result:
the target equals the source row by row, the slot is gone, and the source
stays frozen (the application writes to the target from then on:
streams.dataplane.cdc.freeze). A DDL on one source table during capture
pauses that migration only, with the change as its reason."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from config import KafkaNames, Settings
from config.connections import Connection
from domain import CutoverCompleted, CutoverMigration, MigrationState, SchemaDrifted, Status
from ops.slots import slot_report
from tests.support.cdc import cdc_spec, create_items, rows, wal_position, write
from tests.support.data_plane import DataPlane, data_plane
from tests.support.pg_cluster import Cluster
from tests.support.processes import eventually
from tests.support.stack import Stack
from tests.support.tables import connection_for, fresh_database

pytestmark = pytest.mark.e2e
ROWS = 3000


@pytest.fixture
def source_url(crashable: Cluster, unique: str) -> Iterator[str]:
    with crashable.database(f"live_{unique}") as url:
        create_items(url, ROWS)
        yield url
        with psycopg.connect(url, autocommit=True) as conn:  # a slot keeps its database
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = current_database()"
            )


@pytest.fixture
def target_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"tgt_{unique}") as url:
        yield url


@pytest.fixture
def connections(source_url: str, target_url: str) -> dict[str, Connection]:
    return {"legacy": connection_for(source_url), "warehouse": connection_for(target_url)}


class Writer:
    """Inserts, updates (large values too) and deletes on the source, in a
    thread of its own, until stopped; how many rows it changed."""

    def __init__(self, url: str) -> None:
        self.url, self.stop, self.made = url, asyncio.Event(), 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.loop = asyncio.new_event_loop()

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> int:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop.set)
            self.thread.join(60)
        return self.made

    def _run(self) -> None:
        self.made = self.loop.run_until_complete(write(self.url, self.stop))


def caught_up(plane: DataPlane, mid: str, source_url: str) -> MigrationState:
    """The migration once its sync reported a position at or past the source's now."""
    upto = _lsn(wal_position(source_url))

    def there() -> MigrationState | None:
        state = plane.state(mid)
        assert state.status is Status.SYNCING, state.reason
        reached = state.position is not None and _lsn(state.position) >= upto
        return state if reached else None

    found: MigrationState = eventually(there, timeout=180, every=0.5)
    return found


def test_a_live_table_is_synced_then_cut_over_to_an_equal_target(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    target_url: str,
    connections: dict[str, Connection],
) -> None:
    mid, load = "m-live", Writer(source_url)
    with data_plane(settings, topics, tmp_path, connections) as plane:
        load.start()
        try:
            plane.start(mid, cdc_spec(batch_size=500))
            syncing = plane.wait_for(mid, "SYNCING", "FAILED", "PAUSED", timeout=240)
            assert syncing.status is Status.SYNCING, syncing.reason
            lagging = eventually(lambda: (s := plane.state(mid)).lag_bytes is not None and s)
        finally:
            made = load.finish()  # the writes stop; the sync catches up with them
        caught = caught_up(plane, mid, source_url)

        plane.send(
            CutoverMigration(
                command_id="c-cutover",
                migration_id=mid,
                max_lag_bytes=0,
                max_lag_seconds=0,
                freeze=True,
            )
        )
        done = plane.wait_for(mid, "COMPLETED", "FAILED", "PAUSED", timeout=240)
        events = plane.events()[mid]

    assert done.status is Status.COMPLETED, done.reason
    assert lagging.lag_seconds is not None and caught.position is not None
    (completed,) = [e for e in events if isinstance(e, CutoverCompleted)]
    result = completed.result
    source, target = rows(source_url, "items"), rows(target_url, "items_copy")
    assert target == source  # row by row, the changes made during copy and sync included
    assert result.source_rows == result.target_rows == len(source)
    assert result.source_checksum == result.target_checksum
    assert result.frozen is True and result.changes_applied > 0 and made > 0
    assert not [s for s in slot_report({"legacy": connections["legacy"]}).slots]
    with (
        psycopg.connect(source_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match=f"cutover of migration {mid}"),
    ):
        conn.execute("INSERT INTO items (name, n) VALUES ('late', 1)")


def _lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def test_a_ddl_during_capture_pauses_only_that_migration(
    settings: Settings,
    topics: KafkaNames,
    tmp_path: Path,
    source_url: str,
    connections: dict[str, Connection],
) -> None:
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE other (LIKE items INCLUDING ALL)")
        conn.execute("INSERT INTO other SELECT * FROM items")
    with data_plane(settings, topics, tmp_path, connections) as plane:
        plane.start("m-drift", cdc_spec())
        plane.start("m-other", cdc_spec(source_table="other", target_table="other_copy"))
        for mid in ("m-drift", "m-other"):
            state = plane.wait_for(mid, "SYNCING", "FAILED", "PAUSED", timeout=240)
            assert state.status is Status.SYNCING, (mid, state.reason)

        with psycopg.connect(source_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE items ADD COLUMN note text")
            conn.execute("INSERT INTO items (name, n, note) VALUES ('after', 1, 'x')")
            conn.execute("INSERT INTO other (name, n) VALUES ('after', 1)")
        drifted = plane.wait_for("m-drift", "PAUSED", "FAILED", timeout=120)
        other = caught_up(plane, "m-other", source_url)
        events = plane.events()["m-drift"]

    assert drifted.status is Status.PAUSED
    assert drifted.reason is not None and "note" in drifted.reason
    (drift,) = [e for e in events if isinstance(e, SchemaDrifted)]
    assert (drift.phase, drift.reason) == ("sync", drifted.reason)
    assert other.status is Status.SYNCING  # the other migration goes on

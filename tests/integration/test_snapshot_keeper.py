"""The snapshot keeper, against real PostgreSQL databases (no Kafka): the
snapshot it holds outlives the process that asked for it (kill -9 of its
whole process group), and the keeper lets it go, saying why, when the copy in
it no longer needs it; it leaves no zombie behind and no secret on its
command line or in its environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from streams.dataplane import checkpoints
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.database import Conn, Database, Databases
from streams.dataplane.errors import PhaseError, SnapshotLost
from streams.dataplane.keeper import keep
from streams.dataplane.snapshots import Snapshot, reading
from tests.support.phases import legacy_and_warehouse
from tests.support.stack import Stack
from tests.support.tables import connection_for, fresh_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROWS = 20
PASSWORD = "keeper-secret-not-for-ps"  # trust authentication: sent, never checked
# A phase worker in miniature: it keeps a snapshot, says which, and waits to be killed.
WORKER = """
import asyncio, json, sys
from config import Settings
from streams.dataplane.database import Databases
from streams.dataplane.keeper import keep
from tests.support.tables import connection_for

async def main() -> None:
    source, target, migration = sys.argv[1:]
    connections = {"legacy": connection_for(source), "warehouse": connection_for(target)}
    dbs = Databases(Settings(phase={"connections": connections}))
    snapshot = await keep(await dbs.get("legacy"), await dbs.get("warehouse"), migration, 600)
    print(json.dumps(snapshot.as_json()), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
            conn.execute(f"INSERT INTO items SELECT generate_series(1, {ROWS})")
        yield url


@pytest.fixture
def migration(unique: str) -> Iterator[str]:
    """A migration id of this test's own; no keeper of it outlives the test."""
    migration_id = f"m-{unique}"
    yield migration_id
    for pid in keepers(migration_id):
        os.kill(pid, signal.SIGTERM)


@pytest.fixture
async def target(databases: Databases) -> Database:
    """The target, its checkpoint tables ready as extract prepares them."""
    warehouse = await databases.get("warehouse")
    await warehouse.autocommit(checkpoints.prepare)
    return warehouse


def keepers(migration_id: str) -> list[int]:
    """The running keepers of `migration_id`, whoever started them."""
    wanted = [sys.executable, "-m", "streams.dataplane.keeper", migration_id]
    found = []
    for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            if running(pid) and command_line(pid) == wanted:
                found.append(pid)
        except OSError:
            continue  # ended meanwhile
    return found


def command_line(pid: int) -> list[str]:
    return shown(pid, "cmdline").decode().split("\0")[:-1]


def shown(pid: int, what: str) -> bytes:
    """/proc/<pid>/<what>: what ps and anyone of the same user can see."""
    return Path(f"/proc/{pid}/{what}").read_bytes()


def ended(pid: int) -> bool:
    """Whether `pid` is gone, not even a zombie left (its parent reaped it)."""
    return not Path(f"/proc/{pid}").exists()


def running(pid: int) -> bool:
    """Whether `pid` runs (neither ended nor a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def until(check: Callable[[], Awaitable[bool] | bool], seconds: float = 60) -> None:
    """Wait up to `seconds` for `check` to hold."""
    async with asyncio.timeout(seconds):
        while True:
            result = check()
            if await result if isinstance(result, Awaitable) else result:
                return
            await asyncio.sleep(0.1)


async def visible_ids(source: Database, snapshot: Snapshot) -> list[int] | None:
    """The source's ids in `snapshot` (None: it can no longer be imported)."""
    try:
        async with reading(source, snapshot.id) as conn:
            rows = await (await conn.execute("SELECT id FROM items ORDER BY id")).fetchall()
    except SnapshotLost:
        return None
    return [row[0] for row in rows]


async def gone(source: Database, snapshot: Snapshot) -> bool:
    return await visible_ids(source, snapshot) is None


async def record(target: Database, cp: Checkpoint) -> None:
    async def write(conn: Conn) -> None:
        await checkpoints.create(conn, cp)

    await target.transaction(write)


async def finish(target: Database, cp: Checkpoint) -> None:
    async def write(conn: Conn) -> None:
        await checkpoints.finish(conn, cp, {})

    await target.transaction(write)


async def cancel(target: Database, migration_id: str) -> None:
    await target.autocommit(lambda conn: checkpoints.mark_cancelled(conn, migration_id))


async def keep_one(
    databases: Databases, target: Database, migration: str, lease: float = 600
) -> tuple[Snapshot, int]:
    """Keep a snapshot in this process; the pid of its keeper."""
    before = set(keepers(migration))
    snapshot = await keep(await databases.get("legacy"), target, migration, lease)
    (pid,) = set(keepers(migration)) - before
    return snapshot, pid


def start_worker(
    source_url: str, target_url: str, migration: str
) -> tuple[subprocess.Popen[bytes], bytes]:
    """The miniature worker, in a session of its own, and its snapshot line."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, source_url, target_url, migration],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,
    )
    assert worker.stdout is not None
    return worker, worker.stdout.readline()


class Log:
    """What the keepers started by this test wrote to the inherited stderr."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd, self.text = capfd, ""

    def says(self, words: str) -> bool:
        self.text += self.capfd.readouterr().err
        return words in self.text


async def test_a_kept_snapshot_outlives_its_killed_process_group(
    databases: Databases, target: Database, source_url: str, target_url: str, migration: str
) -> None:
    worker, line = await asyncio.to_thread(start_worker, source_url, target_url, migration)
    snapshot = Snapshot(**json.loads(line))
    (keeper,) = keepers(migration)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("INSERT INTO items VALUES (1000)")  # written after the export

    os.killpg(worker.pid, signal.SIGKILL)  # the worker and everything in its group
    worker.wait()

    source = await databases.get("legacy")
    assert await visible_ids(source, snapshot) == list(range(1, ROWS + 1))
    assert running(keeper) and os.getsid(keeper) == keeper  # a session of its own
    await cancel(target, migration)  # the orphan still follows its rules
    await until(lambda: gone(source, snapshot))
    await until(lambda: not running(keeper))


async def test_the_keeper_lets_go_once_its_slices_are_done_and_is_reaped(
    databases: Databases, target: Database, migration: str, capfd: pytest.CaptureFixture[str]
) -> None:
    snapshot, pid = await keep_one(databases, target, migration)
    position = {"snapshot": snapshot.as_json()}
    slices = [Checkpoint(migration, "extract", s, position) for s in (0, 1)]
    for cp in slices:
        await record(target, cp)
    source, log = await databases.get("legacy"), Log(capfd)
    await until(lambda: log.says(f"snapshot {snapshot.id}: named by 2 extract slices"))

    await finish(target, slices[0])
    await finish(target, slices[1])

    await until(lambda: ended(pid))  # ended, and reaped by this process
    assert await gone(source, snapshot)
    assert log.says("let go: its extract slices are done (2)")


async def test_the_keeper_lets_go_when_the_migration_is_cancelled(
    databases: Databases, target: Database, migration: str, capfd: pytest.CaptureFixture[str]
) -> None:
    snapshot, pid = await keep_one(databases, target, migration)
    await record(target, Checkpoint(migration, "extract", 0, {"snapshot": snapshot.as_json()}))
    source, log = await databases.get("legacy"), Log(capfd)
    assert await visible_ids(source, snapshot) == list(range(1, ROWS + 1))

    await cancel(target, migration)

    await until(lambda: ended(pid))
    assert await gone(source, snapshot)
    assert log.says("let go: the migration is cancelled")


async def test_the_lease_ends_a_snapshot_whose_copy_makes_no_progress(
    databases: Databases, target: Database, migration: str, capfd: pytest.CaptureFixture[str]
) -> None:
    snapshot, pid = await keep_one(databases, target, migration, lease=2)
    await record(target, Checkpoint(migration, "extract", 0, {"snapshot": snapshot.as_json()}))

    await until(lambda: ended(pid))

    assert await gone(await databases.get("legacy"), snapshot)
    log = Log(capfd)
    assert log.says("let go: no copy progress for") and log.says("s (lease 2 s)")


async def test_the_lease_ends_a_snapshot_no_checkpoint_ever_named(
    databases: Databases, target: Database, migration: str, capfd: pytest.CaptureFixture[str]
) -> None:
    snapshot, pid = await keep_one(databases, target, migration, lease=2)

    await until(lambda: ended(pid))

    assert await gone(await databases.get("legacy"), snapshot)
    assert Log(capfd).says("let go: no extract slice named it within the lease (2 s)")


async def test_the_keeper_lets_go_once_a_newer_snapshot_replaced_it(
    databases: Databases, target: Database, migration: str, capfd: pytest.CaptureFixture[str]
) -> None:
    snapshot, pid = await keep_one(databases, target, migration)
    cp = Checkpoint(migration, "extract", 0, {"snapshot": snapshot.as_json()})
    await record(target, cp)
    log = Log(capfd)
    await until(lambda: log.says(f"snapshot {snapshot.id}: named by 1 extract slices"))
    newer, _ = await keep_one(databases, target, migration)  # as a restarted extract would

    async def restart(conn: Conn) -> None:  # as extract's start-over does: a new plan
        await checkpoints.drop_phase(conn, migration, "extract")
        await checkpoints.create(
            conn,
            Checkpoint(migration, "extract", 0, {"snapshot": newer.as_json()}, rows_total=ROWS),
        )

    await target.transaction(restart)

    await until(lambda: ended(pid))
    source = await databases.get("legacy")
    assert await gone(source, snapshot)
    assert await visible_ids(source, newer) == list(range(1, ROWS + 1))  # the new one lives
    assert log.says("let go: no extract slice names it any more (a new snapshot replaced it)")


async def test_no_secret_on_the_keepers_command_line_or_in_its_environment(
    source_url: str, target_url: str, migration: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = SecretStr(PASSWORD)
    connections = {
        "legacy": connection_for(source_url, password=secret),
        "warehouse": connection_for(target_url, password=secret),
    }
    monkeypatch.setenv("PHASE_CONNECTIONS", json.dumps({"legacy": {"password": PASSWORD}}))
    async with legacy_and_warehouse(source_url, target_url, connections=connections) as dbs:
        await keep(await dbs.get("legacy"), await dbs.get("warehouse"), migration, 600)
        (pid,) = keepers(migration)

        visible = shown(pid, "cmdline") + shown(pid, "environ")

    assert PASSWORD.encode() not in visible
    assert b"dbname" not in visible and b"host=" not in visible  # no connection string at all
    assert command_line(pid)[-1] == migration


async def test_a_source_that_refuses_fails_the_keep_naming_the_connection(
    stack: Stack, target_url: str, migration: str
) -> None:
    missing = psycopg.conninfo.make_conninfo(stack.database_url, dbname="no_such_database")
    async with legacy_and_warehouse(missing, target_url) as dbs:
        with pytest.raises(PhaseError, match=r"^legacy: cannot connect \(.*does not exist"):
            await keep(await dbs.get("legacy"), await dbs.get("warehouse"), migration, 600)

    await until(lambda: keepers(migration) == [])  # it ended once it said why


async def test_the_keeper_ends_when_its_source_connection_is_lost(
    databases: Databases,
    target: Database,
    source_url: str,
    migration: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    snapshot, pid = await keep_one(databases, target, migration)

    await asyncio.to_thread(end_keeper_sessions, source_url)

    await until(lambda: ended(pid))
    assert await gone(await databases.get("legacy"), snapshot)
    assert Log(capfd).says("let go: the source connection is lost")


def end_keeper_sessions(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'migrator-snapshot-keeper' AND datname = current_database()"
        )

"""Self-healing, proven: many migrations of real tables while the broker is
killed (-9) and restarted twice and restarted cleanly once, the read-model and
the source/target databases are each stopped immediately and restarted, a
worker is SIGSTOPped past its session timeout and continued, and some commands
are written with a non-Java partitioner. The test restarts only the broker and
the databases; the processes run under supervisord, as they do locally.

Then: every migration COMPLETED with no operator retry, every event log
1..N, the read model equals a recomputation from the log, every target equals
its source. Per fault it prints the longest stall (time with no event
written while migrations were unfinished).

Sized for CI by default (30 migrations of 1,500 rows, one node: about 3
minutes); FAULT_MIGRATIONS, FAULT_ROWS, FAULT_DOWN_SECONDS (5),
FAULT_COMPLETE_SECONDS (900, the wait for every migration to complete) and
FAULT_NODES ("1", or "1,3" for the 3-node cluster too, where a rolling restart
of the three brokers comes first) size a longer soak, e.g.
`FAULT_MIGRATIONS=100 FAULT_NODES=1,3 scripts/test tests/chaos/test_fault_matrix.py -s`.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from cli.topics import create_topics
from config import KafkaNames, Settings
from domain import StartMigration, replay
from schemas import encode
from schemas.codec import RECORD_TYPE_HEADER
from streams.kafka.reader import read_committed
from tests.support.data_plane import spec
from tests.support.fault_stack import FaultStack, fault_stack
from tests.support.log_check import LogReport, check_events, final_status
from tests.support.processes import COMMANDS, eventually, group_is_stable
from tests.support.supervised import Program, Supervised
from tests.support.tables import CUSTOMERS, connection_for, create_customers, fresh_database

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(3600),
]
MIGRATIONS = int(os.environ.get("FAULT_MIGRATIONS", "30"))
ROWS = int(os.environ.get("FAULT_ROWS", "1500"))
DOWN = float(os.environ.get("FAULT_DOWN_SECONDS", "5"))
COMPLETE = float(os.environ.get("FAULT_COMPLETE_SECONDS", "900"))
NODES = [int(n) for n in os.environ.get("FAULT_NODES", "1").split(",")]
SESSION_TIMEOUT_S = 10.0
FOREIGN_EVERY = 5  # every 5th migration is started by a librdkafka-partitioned client
QUIET = {
    "log_level": 2
}  # the test's own clients: no "Connect refused" lines while the broker is down


@dataclass
class Progress:
    """When each event arrived (read_committed), from a consumer of its own,
    and how many migrations were started and completed by then."""

    arrivals: list[float] = field(default_factory=list)
    started: int = 0  # migrations the test has started
    completed: list[float] = field(default_factory=list)  # when each one completed
    stop: threading.Event = field(default_factory=threading.Event)

    def follow(self, bootstrap: str, topic: str) -> threading.Thread:
        def run() -> None:
            consumer = Consumer(
                {"bootstrap.servers": bootstrap, "group.id": f"progress-{uuid.uuid4().hex}",
                 "isolation.level": "read_committed", "auto.offset.reset": "earliest", **QUIET}
            )  # fmt: skip
            consumer.subscribe([topic])
            while not self.stop.is_set():
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    self.arrivals.append(time.monotonic())
                    if dict(msg.headers() or []).get(RECORD_TYPE_HEADER) == b"MigrationCompleted":
                        self.completed.append(time.monotonic())
            consumer.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def wait_after(self, end: float, timeout: float = 120.0) -> None:
        """Until an event arrives after `end` (progress again) or every started
        migration has completed, at most `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.arrivals and self.arrivals[-1] > end) or len(self.completed) >= self.started:
                return
            time.sleep(0.2)

    def longest_stall(self, start: float, end: float) -> float:
        """The longest time without an event from `start` until the first event
        after `end` (the fault's end), or until now if none came yet; time
        when every started migration had completed is no stall."""
        after = [t for t in self.arrivals if t > end]
        until = after[0] if after else time.monotonic()
        if len(self.completed) >= self.started:
            until = min(until, max(start, self.completed[self.started - 1]))
        edges = [start, *(t for t in self.arrivals if start <= t <= until), until]
        return max(b - a for a, b in itertools.pairwise(edges))


@dataclass
class System:
    stack: FaultStack
    settings: Settings
    names: KafkaNames
    supervised: Supervised
    sources: str
    targets: str


@pytest.fixture(params=NODES, ids=lambda n: f"{n}-node")
def system(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[System]:
    with fault_stack(request.param) as stack:
        settings = Settings(
            kafka={
                "bootstrap_servers": stack.bootstrap,
                "topic_partitions": 6,
                "topic_replication_factor": min(3, stack.nodes),
            },
            database={"url": stack.urls["read"]},
            worker={"session_timeout_ms": int(SESSION_TIMEOUT_S * 1000)},
        )
        names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
        create_topics(settings)
        with (
            fresh_database(stack.urls["data"], "sources") as sources,
            fresh_database(stack.urls["data"], "targets") as targets,
        ):
            for i in range(MIGRATIONS):
                create_customers(sources, ROWS + i, table=f"t{i}")
            with psycopg.connect(targets, autocommit=True) as conn:
                for i in range(MIGRATIONS):
                    conn.execute(CUSTOMERS.replace("customers", f"t{i}", 1))
            procs = programs(settings, sources, targets, tmp_path)
            supervised = Supervised(tmp_path / "processes", procs)
            supervised.start()
            try:
                bootstrap = settings.kafka.bootstrap_servers
                eventually(lambda: group_is_stable(bootstrap, settings.kafka.app_id, 2), 180)
                eventually(lambda: group_is_stable(bootstrap, names.phase_worker_group, 2), 180)
                yield System(stack, settings, names, supervised, sources, targets)
            finally:
                supervised.stop()


def programs(settings: Settings, sources: str, targets: str, home: Path) -> dict[str, Program]:
    connections = home / "connections.json"
    conns = {"legacy": connection_for(sources), "warehouse": connection_for(targets)}
    connections.write_text(json.dumps({n: c.model_dump(mode="json") for n, c in conns.items()}))
    base = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "DATABASE_URL": settings.database.url.get_secret_value(),
        "KAFKA_TOPIC_PARTITIONS": str(settings.kafka.topic_partitions),
        "WORKER_SESSION_TIMEOUT_MS": str(settings.worker.session_timeout_ms),
        "PHASE_CONNECTIONS_FILE": str(connections),
        "PYTHONUNBUFFERED": "1",
    }
    found = {
        f"w{i}": Program(tuple(COMMANDS["worker"]), {**base, "WORKER_ID": f"w{i}"})
        for i in range(2)
    }
    for i in range(2):
        found[f"p{i}"] = Program(
            tuple(COMMANDS["phase-worker"]), {**base, "PHASE_WORKER_ID": f"p{i}"}
        )
    found["projector"] = Program(tuple(COMMANDS["projector"]), base)
    return found


def start_all(system: System, ids: list[str], offset: int = 0) -> None:
    ours = Producer(
        {"bootstrap.servers": system.stack.bootstrap, "partitioner": "murmur2_random", **QUIET}
    )
    # librdkafka's (and kcat's) default partitioner hashes keys differently
    # from the Java client's: these commands land on other partitions.
    foreign = Producer({"bootstrap.servers": system.stack.bootstrap, **QUIET})
    for i, mid in enumerate(ids, offset):
        command = StartMigration(
            command_id=f"c-{mid}",
            migration_id=mid,
            spec=spec(source_table=f"t{i}", target_table=f"t{i}", batch_size=50, parallelism=2),
        )
        value, headers = encode(command)
        producer = foreign if i % FOREIGN_EVERY == 0 else ours
        producer.produce(system.names.commands, value, mid.encode(), headers=headers)
    assert ours.flush(60) == 0 and foreign.flush(60) == 0


def faults(system: System) -> list[tuple[str, Callable[[], None]]]:
    stack, sup = system.stack, system.supervised
    node = 1 if stack.nodes == 1 else stack.coordinator_node(system.settings.kafka.app_id)

    def down(stop: Callable[[], None], start: Callable[[], None]) -> Callable[[], None]:
        def fault() -> None:
            stop()
            time.sleep(DOWN)
            start()

        return fault

    def stall_worker() -> None:
        pid = sup.pid("w0")
        os.kill(pid, signal.SIGSTOP)
        time.sleep(SESSION_TIMEOUT_S + 5)
        os.kill(pid, signal.SIGCONT)

    def rolling_restart() -> None:
        for n in range(1, stack.nodes + 1):
            stack.kafka("restart", n)

    rolling = [("rolling restart of the 3 brokers", rolling_restart)]
    return [*(rolling if stack.nodes == 3 else []),
        ("broker kill -9", down(lambda: stack.kafka("kill", node), lambda: stack.kafka("start"))),
        ("read-model database immediate stop", down(lambda: stack.pg("read", "kill"),
                                                    lambda: stack.pg("read", "start"))),
        ("worker SIGSTOP past its session timeout", stall_worker),
        ("source/target database immediate stop", down(lambda: stack.pg("data", "kill"),
                                                       lambda: stack.pg("data", "start"))),
        ("broker clean restart", lambda: stack.kafka("restart", node)),
        ("broker kill -9 again", down(lambda: stack.kafka("kill", node),
                                      lambda: stack.kafka("start"))),
    ]  # fmt: skip


def test_routine_faults_need_no_person(system: System) -> None:
    ids = [f"m-{i}" for i in range(MIGRATIONS)]
    progress = Progress()
    follower = progress.follow(system.stack.bootstrap, system.names.events)
    matrix = faults(system)
    size = -(-len(ids) // len(matrix))  # a wave before each fault: work in flight at every one
    stalls: dict[str, float] = {}
    for k, (name, fault) in enumerate(matrix):
        wave = ids[k * size : (k + 1) * size]
        start_all(system, wave, offset=k * size)
        progress.started += len(wave)
        time.sleep(3)  # work in flight when it hits
        began = time.monotonic()
        fault()
        ended = time.monotonic()
        progress.wait_after(ended)
        stalls[name] = progress.longest_stall(began, ended)
        in_flight = progress.started - len(progress.completed)
        print(f"  {time.strftime('%H:%M:%S')} '{name}' took {ended - began:.1f} s;"
              f" {in_flight} migrations unfinished when it ended")  # fmt: skip

    for name, seconds in stalls.items():
        print(f"  longest stall around '{name}': {seconds:.1f} s")
    print(f"topology: {system.stack.nodes} node(s); restarts: {system.supervised.restarts()}")
    report = _completed(system, ids, timeout=COMPLETE)
    progress.stop.set()
    follower.join(10)
    assert report.violations == []
    assert _read_model(system) == {mid: _from_log(report, mid) for mid in ids}
    with psycopg.connect(system.stack.urls["read"]) as conn:
        held = "SELECT migration_id FROM migrations WHERE quarantine_reason IS NOT NULL"
        assert conn.execute(held).fetchall() == []
    _assert_targets_equal_sources(system)


def _completed(system: System, ids: list[str], timeout: float) -> LogReport:
    """The event log once every migration COMPLETED; fails naming where they are."""
    deadline = time.monotonic() + timeout
    while True:
        report = check_events(read_committed(system.settings, system.names.events))
        statuses = Counter(final_status(report, mid) for mid in ids)
        if statuses == Counter({"COMPLETED": len(ids)}):
            return report
        if time.monotonic() >= deadline:
            behind = [
                (m, final_status(report, m)) for m in ids if final_status(report, m) != "COMPLETED"
            ]
            pytest.fail(f"not all COMPLETED in {timeout:g} s: {statuses}; {behind[:10]}")
        time.sleep(2)


def _from_log(report: LogReport, mid: str) -> tuple[str, int]:
    state = replay(mid, report.events[mid])
    return state.status.value, state.version


def _read_model(system: System) -> dict[str, tuple[str, int]]:
    def rows() -> dict[str, tuple[str, int]] | None:
        with psycopg.connect(system.stack.urls["read"]) as conn:
            found = conn.execute("SELECT migration_id, status, version FROM migrations").fetchall()
        got = {mid: (status, int(version)) for mid, status, version in found}
        return got if all(s == "COMPLETED" for s, _ in got.values()) and got else None

    return eventually(rows, timeout=120, every=1)  # type: ignore[no-any-return]


def _assert_targets_equal_sources(system: System) -> None:
    with psycopg.connect(system.sources) as src, psycopg.connect(system.targets) as tgt:
        for i in range(MIGRATIONS):
            digest = f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM t{i} AS t"
            assert src.execute(digest).fetchone() == tgt.execute(digest).fetchone(), f"t{i}"

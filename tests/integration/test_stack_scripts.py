"""The local stack scripts: a second start starts nothing, a taken port is
named, and a stop leaves no process behind."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import eventually
from tests.support.stack import ROOT, free_port

pytestmark = pytest.mark.integration
KAFKA = ROOT / "scripts/kafka/server"
PG = ROOT / "scripts/pg/server"
QUIET = {"log_level": 2}  # a killed node: no "Connect refused" lines from this test's clients


@pytest.fixture
def home() -> Iterator[Path]:
    # Under the project (not /tmp): PostgreSQL's own user must reach it.
    path = ROOT / ".local" / f"script-test-{os.getpid()}-{free_port()}"
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def run(script: Path, action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), action],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def pid_alive(pid: int) -> bool:
    """A process that exited but was not reaped yet (a zombie) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def postmaster_pid(home: Path) -> int:
    return int((home / "pg" / "data" / "postmaster.pid").read_text().split()[0])


def test_postgres_starts_once_and_stops_clean(home: Path) -> None:
    env = {"PG_HOME_DIR": str(home / "pg"), "PG_PORT": str(free_port())}

    first = run(PG, "start", env)
    pid = postmaster_pid(home)
    second = run(PG, "start", env)
    stopped = run(PG, "stop", env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0 and "already running" in second.stderr
    assert first.stdout == second.stdout
    assert stopped.returncode == 0 and not pid_alive(pid)
    assert run(PG, "status", env).returncode == 3


def test_kafka_starts_once_and_stops_clean(home: Path) -> None:
    env = {
        "KAFKA_HOME_DIR": str(home / "kafka"),
        "KAFKA_LIB_DIR": str(ROOT / ".local" / "kafka" / "lib"),
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
    }

    first = run(KAFKA, "start", env)
    pid = int((home / "kafka" / "kafka.pid").read_text())
    second = run(KAFKA, "start", env)
    stopped = run(KAFKA, "stop", env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0 and "already running" in second.stderr
    assert first.stdout == second.stdout == f"127.0.0.1:{env['KAFKA_PORT']}\n"
    assert stopped.returncode == 0 and not pid_alive(pid)
    assert run(KAFKA, "status", env).returncode == 3


@pytest.mark.parametrize(
    ("script", "port_var"), [(PG, "PG_PORT"), (KAFKA, "KAFKA_PORT")], ids=["postgres", "kafka"]
)
def test_a_port_in_use_is_named(home: Path, script: Path, port_var: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "PG_HOME_DIR": str(home / "pg"),
            "KAFKA_HOME_DIR": str(home / "kafka"),
            "KAFKA_LIB_DIR": str(ROOT / ".local" / "kafka" / "lib"),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            port_var: str(port),
        }

        result = run(script, "start", env)

    assert result.returncode != 0
    assert str(port) in result.stderr and "in use" in result.stderr


def test_a_three_node_cluster_keeps_serving_when_a_node_is_killed(home: Path) -> None:
    ports = [free_port() for _ in range(6)]
    env = {
        "KAFKA_NODES": "3",
        "KAFKA_HOME_DIR": str(home / "kafka"),
        "KAFKA_LIB_DIR": str(ROOT / ".local" / "kafka" / "lib"),
        "KAFKA_PORTS": ",".join(map(str, ports[:3])),
        "KAFKA_CONTROLLER_PORTS": ",".join(map(str, ports[3:])),
    }
    bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports[:3])
    try:
        started = run(KAFKA, "start", env)
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"{bootstrap}\n"
        topic = _replicated_topic(bootstrap)
        assert topic == (3, "2")  # replication factor, min.insync.replicas
        assert _replicas_of_our_topics(bootstrap) == {3}  # picked from the cluster's size

        killed = subprocess.run(
            [str(KAFKA), "kill", "2"], env={**os.environ, **env}, capture_output=True, text=True
        )
        assert killed.returncode == 0, killed.stderr
        assert _round_trip(bootstrap) == b"after a node died"
    finally:
        stopped = run(KAFKA, "stop", env)
    assert stopped.returncode == 0
    assert run(KAFKA, "status", env).returncode == 3


def _replicated_topic(bootstrap: str) -> tuple[int, str]:
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    admin.create_topics([NewTopic("cluster-check", 1, 3)])["cluster-check"].result(60)
    meta = eventually(lambda: _with_leaders(admin, "cluster-check"), timeout=60)
    resource = ConfigResource("topic", "cluster-check")
    # the broker asked may not know the new topic yet (metadata lags a creation)
    configs = eventually(lambda: _configs(admin, resource), timeout=60)
    return len(meta.partitions[0].replicas), configs["min.insync.replicas"].value


def _configs(admin: Any, resource: Any) -> Any:
    """The resource's configs, or None while a broker answers that it knows no such topic."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        return admin.describe_configs([resource])[resource].result(30)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        raise


def _with_leaders(admin: Any, topic: str) -> Any:
    """The topic's metadata once every partition has a leader (or None)."""
    found = admin.list_topics(topic, timeout=30).topics.get(topic)
    ready = found is not None and found.partitions and found.error is None
    return found if ready and all(p.leader >= 0 for p in found.partitions.values()) else None


def _replicas_of_our_topics(bootstrap: str) -> set[int]:
    from confluent_kafka.admin import AdminClient

    from cli.topics import create_topics
    from config import Settings

    created = create_topics(Settings(kafka={"bootstrap_servers": bootstrap}))
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    # Metadata can lag a creation on a cluster: each topic once its leaders are known.
    found = [eventually(lambda t=t: _with_leaders(admin, t), timeout=60) for t in created]
    return {len(meta.partitions[0].replicas) for meta in found}


def _round_trip(bootstrap: str) -> bytes | None:
    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", **QUIET})
    producer.produce("cluster-check", b"after a node died")
    assert producer.flush(60) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "cluster-check",
         "auto.offset.reset": "earliest", **QUIET}
    )  # fmt: skip
    consumer.subscribe(["cluster-check"])
    try:
        for _ in range(120):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                return msg.value()
        return None
    finally:
        consumer.close()

"""Where the tests find Kafka and PostgreSQL.

In order: `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` when set; containers
(testcontainers) when a Docker engine answers; otherwise the project's own
local stack (scripts/kafka/server, scripts/pg/server) in a throwaway folder on
free ports. Once per test session, torn down afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_IMAGE = "apache/kafka:4.4.0"
POSTGRES_IMAGE = "postgres:16"


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    database_url: str  # a role that may CREATE DATABASE
    kafka_port: int | None = None  # set when the console wrappers can reach it by port
    how: str = "env"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@contextmanager
def session_stack() -> Iterator[Stack]:
    bootstrap, dsn = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if bootstrap and dsn:
        port = bootstrap.rsplit(":", 1)[-1]
        yield Stack(bootstrap, dsn, int(port) if port.isdigit() else None, "env")
    elif docker_available():
        with containers() as stack:
            yield stack
    else:
        with local_stack(ROOT / ".local" / f"test-stack-{os.getpid()}") as stack:
            yield stack


@contextmanager
def local_stack(home: Path) -> Iterator[Stack]:
    kafka_port, pg_port = free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_HOME_DIR": str(home / "kafka"),
        "KAFKA_LIB_DIR": str(ROOT / ".local" / "kafka" / "lib"),
        "KAFKA_PORT": str(kafka_port),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "PG_HOME_DIR": str(home / "pg"),
        "PG_PORT": str(pg_port),
    }
    kafka, pg = ROOT / "scripts/kafka/server", ROOT / "scripts/pg/server"
    try:
        subprocess.run([str(kafka), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
        url = subprocess.run(
            [str(pg), "start"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        yield Stack(f"127.0.0.1:{kafka_port}", url, kafka_port, "local")
    finally:
        subprocess.run([str(kafka), "stop"], env=env, check=False)
        subprocess.run([str(pg), "stop"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def containers() -> Iterator[Stack]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    port = free_port()
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(port, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", f"PLAINTEXT://:{port},CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://localhost:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with kafka, PostgresContainer(POSTGRES_IMAGE, driver=None) as pg:
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        harden(pg.get_connection_url())
        yield Stack(f"localhost:{port}", pg.get_connection_url(), port, "containers")


def harden(superuser_url: str) -> None:
    """What scripts/pg/server and compose do to a new cluster: PUBLIC (every
    role) may no longer connect to its own databases."""
    import psycopg

    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute(b"REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC")


def drop_database(admin_url: str, name: str) -> None:
    """DROP DATABASE … WITH (FORCE), which ends the sessions in it. It refuses
    while an autovacuum worker is in it (a process of no role the test's may
    end): that takes a moment, so try again for a while."""
    import time

    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for _ in range(100):
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
                return
            except psycopg.errors.InsufficientPrivilege:
                time.sleep(0.2)
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

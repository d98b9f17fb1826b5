"""A stack of its own for fault tests, which stop and kill its parts: Kafka
(one node or a 3-node KRaft cluster) and two PostgreSQL clusters, one for the
read model and one for the migrations' source and target databases, each in a
throwaway folder on free ports, driven by the project's own scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import ROOT, free_port

KAFKA = ROOT / "scripts/kafka/server"
PG = ROOT / "scripts/pg/server"


@dataclass(frozen=True)
class FaultStack:
    home: Path
    nodes: int
    kafka_ports: tuple[int, ...]
    controller_ports: tuple[int, ...]
    pg_ports: dict[str, int]  # "read" (the read model), "data" (source and target)
    urls: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.kafka_ports)

    def kafka_env(self) -> dict[str, str]:
        return {
            "KAFKA_NODES": str(self.nodes),
            "KAFKA_HOME_DIR": str(self.home / "kafka"),
            "KAFKA_LIB_DIR": str(ROOT / ".local" / "kafka" / "lib"),
            "KAFKA_PORTS": ",".join(map(str, self.kafka_ports)),
            "KAFKA_CONTROLLER_PORTS": ",".join(map(str, self.controller_ports)),
        }

    def pg_env(self, which: str) -> dict[str, str]:
        return {"PG_HOME_DIR": str(self.home / f"pg-{which}"), "PG_PORT": str(self.pg_ports[which])}

    def kafka(self, action: str, node: int | None = None) -> str:
        """`scripts/kafka/server <action> [node]`: start, stop, kill, restart."""
        args = [action] if node is None else [action, str(node)]
        return _run(KAFKA, args, self.kafka_env())

    def pg(self, which: str, action: str) -> str:
        """`scripts/pg/server <action>` on the read-model or the data cluster."""
        return _run(PG, [action], self.pg_env(which))

    def coordinator_node(self, group: str) -> int:
        """The node that coordinates `group` (its consumer-group coordinator)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        found = admin.describe_consumer_groups([group])[group].result(30)
        return int(found.coordinator.id)


def _run(script: Path, args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout.strip()


@contextmanager
def fault_stack(nodes: int) -> Iterator[FaultStack]:
    home = ROOT / ".local" / f"fault-stack-{free_port()}"
    stack = FaultStack(
        home=home,
        nodes=nodes,
        kafka_ports=tuple(free_port() for _ in range(nodes)),
        controller_ports=tuple(free_port() for _ in range(nodes)),
        pg_ports={"read": free_port(), "data": free_port()},
        urls={},
    )
    try:
        stack.kafka("start")
        for which in ("read", "data"):
            stack.urls[which] = stack.pg(which, "start")
        yield stack
    finally:
        _stop_quietly(stack)
        shutil.rmtree(home, ignore_errors=True)


def _stop_quietly(stack: FaultStack) -> None:
    stops = [lambda: stack.kafka("stop"), lambda: stack.pg("read", "stop")]
    stops.append(lambda: stack.pg("data", "stop"))
    for stop in stops:
        try:
            stop()
        except RuntimeError as exc:  # already down: a fault the test left
            print(f"fault stack: {exc}")

"""A PostgreSQL cluster of a test's own, which the test may crash and bring
back: scripts/pg/server in a throwaway folder on a free port. `kill` is an
immediate stop (`pg_ctl -m immediate`, as a crash ends it); the next `start`
runs crash recovery and returns once the cluster takes connections."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tests.support.stack import ROOT, free_port

SERVER = ROOT / "scripts/pg/server"


@dataclass(frozen=True)
class Cluster:
    home: Path
    port: int
    url: str  # its `migrations` database, as the owner `migrator`

    def kill(self) -> None:
        self._run("kill")

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    @contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A fresh database `name` in this cluster, dropped afterwards (the
        cluster started again first, should the test have left it down)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        try:
            yield make_conninfo(self.url, dbname=name)
        finally:
            self.start()
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def _run(self, action: str) -> str:
        return run_server(action, self.home, self.port)


def run_server(action: str, home: Path, port: int) -> str:
    env = {**os.environ, "PG_HOME_DIR": str(home), "PG_PORT": str(port)}
    done = subprocess.run(
        [str(SERVER), action], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/pg/server {action}: {done.stderr[-2000:]}")
    return done.stdout.strip()


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A running cluster; stopped and removed at the end, whatever the test left."""
    port = free_port()
    home = ROOT / ".local" / f"pg-cluster-{port}"  # the server's user must reach it
    try:
        yield Cluster(home, port, run_server("start", home, port))
    finally:
        try:
            run_server("stop", home, port)
        finally:
            shutil.rmtree(home, ignore_errors=True)

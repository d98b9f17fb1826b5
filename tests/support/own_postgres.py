"""A PostgreSQL cluster of one test's own, in a throwaway folder on a free
port, driven by the project's script (scripts/pg/server): the test may kill
it (`pg_ctl -m immediate`, as a crash ends it) and start it again."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import ROOT, free_port

PG = ROOT / "scripts/pg/server"


@dataclass(frozen=True)
class OwnPostgres:
    home: Path
    port: int
    url: str = ""

    def server(self, action: str) -> str:
        """`scripts/pg/server <action>`: start, stop, kill, status."""
        env = {**os.environ, "PG_HOME_DIR": str(self.home), "PG_PORT": str(self.port)}
        done = subprocess.run(
            [str(PG), action], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg/server {action}: {done.stderr[-2000:]}")
        return done.stdout.strip()


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    port = free_port()
    # under the project's .local, not a private temp folder: the cluster's
    # owner (the `postgres` user, when the tests run as root) must reach it
    cluster = OwnPostgres(ROOT / ".local" / f"own-pg-{port}", port)
    try:
        yield OwnPostgres(cluster.home, port, cluster.server("start"))
    finally:
        try:
            cluster.server("stop")
        finally:
            shutil.rmtree(cluster.home, ignore_errors=True)

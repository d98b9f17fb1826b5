"""Extract's snapshot, held by a process of its own so that it outlives the
phase worker that took it: the chunks copied before a worker is killed stay
valid for the worker that resumes the copy.

`keep()` starts the snapshot keeper (`python -m streams.dataplane.keeper
<migration>`, streams.dataplane.keeping) in a session of its own: a kill -9 of
the worker, or a signal to its process group, does not reach it. The keeper
exports the snapshot and answers with it; it holds it until the copy in it no
longer needs it (streams.dataplane.lease) and says why in its log. Readers
import it as before (`snapshots.reading`); one whose keeper let go gets
`SnapshotLost`.

The connection strings go to the keeper on its stdin, never on its argv or
in its environment (the worker's settings variables are left out of it).
Nobody waits on the keeper: a thread of the worker reaps it when it exits,
or init does once the worker is gone; no zombie is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from config import Settings
from config.redaction import secrets_of
from streams.dataplane import keeping
from streams.dataplane.database import Database
from streams.dataplane.errors import PhaseError, TransientError
from streams.dataplane.failures import Kind
from streams.dataplane.retry import retrying
from streams.dataplane.snapshots import Snapshot

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # the code the keeper runs is the worker's


async def keep(
    source: Database, target: Database, migration_id: str, lease_seconds: float, slot: str = ""
) -> Snapshot:
    """A snapshot of `source`, held by a keeper process until the extract of
    `migration_id` (its checkpoints in `target`) is done with it, cancelled,
    replaced it, or made no progress in it for `lease_seconds`. With `slot`:
    the snapshot of that replication slot, created (anew) with it. Retried
    as a transaction is when a database is away."""
    request = keeping.Request(
        source.conninfo(),
        target.conninfo(),
        lease_seconds,
        source.settings.log_level,
        tuple(secrets_of(source.settings)),
        slot,
    )

    async def once() -> Snapshot:
        pid, answer = await _ask(migration_id, request)
        snapshot = _answer(answer, source, target)
        log.info("snapshot keeper %d holds snapshot %s of %s", pid, snapshot.id, migration_id)
        return snapshot

    return await retrying(source.settings, once)


async def _ask(migration_id: str, request: keeping.Request) -> tuple[int, dict[str, Any]]:
    """Start a keeper; its pid and its one-line answer."""
    proc = await asyncio.to_thread(_spawn, migration_id, request)
    try:
        line = await _first_line(proc.stdout)
        if not line:
            raise PhaseError("the snapshot keeper ended without an answer (its log says why)")
        answer: dict[str, Any] = json.loads(line)
    except BaseException:
        proc.kill()  # it would hold a snapshot nobody takes
        raise
    return proc.pid, answer


def _spawn(migration_id: str, request: keeping.Request) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.dataplane.keeper", migration_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_environment(),
        start_new_session=True,
    )
    threading.Thread(target=proc.wait, name=f"reap-keeper-{proc.pid}", daemon=True).start()
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError), proc.stdin:  # ended already: it has no answer
        proc.stdin.write(request.encode())
    return proc


def _environment() -> dict[str, str]:
    """The worker's environment less its settings (they may hold secrets, and
    the keeper reads none), this code's root first on the import path."""
    settings = Settings.environment_names()
    env = {name: value for name, value in os.environ.items() if name.upper() not in settings}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def _first_line(pipe: IO[bytes] | None) -> bytes:
    """The first line on `pipe`, read without blocking the loop; the pipe is closed after."""
    assert pipe is not None
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe
    )
    try:
        return await reader.readline()
    finally:
        transport.close()


def _answer(answer: dict[str, Any], source: Database, target: Database) -> Snapshot:
    """The snapshot the keeper holds, or the error it met, as a phase sees errors."""
    if "snapshot" in answer:
        return Snapshot(**answer["snapshot"])
    database = target if answer.get("connection") == "target" else source
    what = f"{database.name}: {answer.get('error')}"
    kind = Kind(answer.get("kind", Kind.PERMANENT.value))
    if kind is Kind.UNAVAILABLE:
        raise TransientError(what, database.name, unavailable=True)
    if kind is Kind.CONTENTION:
        raise TransientError(what, database.name)
    raise PhaseError(what)


if __name__ == "__main__":
    sys.exit(keeping.main(sys.argv))

"""The snapshot keeper process (`python -m streams.dataplane.keeper <migration>`):
it exports a snapshot of the source exactly as a phase worker's holder does
(streams.dataplane.snapshots; for change capture, the snapshot of the
migration's replication slot, created with it on a replication connection:
streams.dataplane.cdc.slots), reports it as one JSON line on stdout, closes
stdout, then holds it while the copy in it may go on (streams.dataplane.lease),
looking at the migration's checkpoints in the target about every second.

Started by streams.dataplane.keeper in a session of its own, so that it
outlives its phase worker. Its request comes on stdin, since the connection
strings hold passwords (never on argv or in its environment); it logs to the
stderr it inherited, every secret masked. It exits 0 once it let go (its log
says why), 1 when it could not export (its report says why), 2 on a bad
request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo

from config import exits
from config.logs import log_to_stderr
from config.redaction import redact
from streams.dataplane.cdc.slots import create_with_snapshot
from streams.dataplane.database import Conn
from streams.dataplane.errors import CaptureRefused, PhaseError
from streams.dataplane.failures import Failure, Kind, classify
from streams.dataplane.lease import Seen, verdict
from streams.dataplane.snapshots import Snapshot, export
from streams.dataplane.sql import STATE_SCHEMA

log = logging.getLogger("streams.dataplane.keeper")
POLL_SECONDS = 1.0
# Looks at the target failed in a row before it lets go: 2, 4, 8 and 16 s
# apart, so it rides out half a minute of the target being away.
TARGET_TRIES = 5
# The keeper's sessions, as pg_stat_activity shows them; a peer that vanished
# ends them within about a minute (keepalives), not after the kernel's hours.
SESSION: dict[str, str | int] = {
    "application_name": "migrator-snapshot-keeper",
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}
LOOK = f"""
SELECT count(*) FILTER (WHERE named),
       count(*) FILTER (WHERE named AND NOT done),
       coalesce(extract(epoch FROM now() - max(updated_at) FILTER (WHERE named)), 0)::float8,
       EXISTS (SELECT 1 FROM {STATE_SCHEMA}.cancelled WHERE migration_id = %(migration)s)
FROM (SELECT position -> 'snapshot' ->> 'id' = %(snapshot)s AS named, done, updated_at
      FROM {STATE_SCHEMA}.checkpoints
      WHERE migration_id = %(migration)s AND phase = 'extract') AS slices
"""


@dataclass(frozen=True)
class Request:
    """What the keeper is told on stdin."""

    source: str  # libpq connection strings: they hold the secrets
    target: str
    lease_seconds: float
    log_level: str = "info"
    secrets: tuple[str, ...] = ()  # masked in whatever it logs or reports
    slot: str = ""  # change capture: the replication slot created with the snapshot

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Request:
        found = json.loads(raw)
        return cls(**{**found, "secrets": tuple(found.get("secrets", ()))})


class Refused(PhaseError):
    """The keeper could not start holding: which connection, and what happened."""

    def __init__(self, connection: str, failure: Failure) -> None:
        super().__init__(f"{connection}: {failure.what}")
        self.connection, self.failure = connection, failure


class Keeper:
    """One snapshot of one migration's source, from its export to its end."""

    def __init__(self, migration_id: str, request: Request) -> None:
        self.migration_id, self.request = migration_id, request
        self.stop = asyncio.Event()
        self.source: Conn | None = None
        self.target: Conn | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            return await self._run()
        finally:
            for conn in (self.source, self.target):
                if conn is not None:
                    await conn.close()  # the snapshot ends with the source's

    async def _run(self) -> int:
        try:
            snapshot = await self._start()
        except Refused as exc:
            what = redact(exc.failure.what, self.request.secrets)
            log.error(
                "no snapshot of migration %s (%s: %s)", self.migration_id, exc.connection, what
            )
            report({"error": what, "kind": exc.failure.kind.value, "connection": exc.connection})
            return exits.FAILED
        why = await self._hold(snapshot)
        log.info("snapshot %s of migration %s let go: %s", snapshot.id, self.migration_id, why)
        return exits.STOPPED

    async def _start(self) -> Snapshot:
        """The target first (a keeper that cannot look would hold blind), then the export."""
        try:
            self.target = await _connect(self.request.target)
        except psycopg.Error as exc:
            raise Refused("target", classify(exc)) from exc
        try:
            if not self.request.slot:
                self.source = await _connect(self.request.source)
                return await export(self.source)
            self.source = await _connect(self.request.source, replication="database")
            return await create_with_snapshot(self.source, self.request.slot)
        except psycopg.Error as exc:
            raise Refused("source", classify(exc)) from exc
        except CaptureRefused as exc:
            raise Refused("source", Failure(Kind.PERMANENT, str(exc))) from exc

    async def _hold(self, snapshot: Snapshot) -> str:
        if not report({"snapshot": snapshot.as_json()}):
            return "nobody took it (its phase worker is gone)"
        log.info(
            "holding snapshot %s of migration %s (lease %g s)",
            snapshot.id,
            self.migration_id,
            self.request.lease_seconds,
        )
        return await self._watch(snapshot.id)

    async def _watch(self, snapshot_id: str) -> str:
        exported = asyncio.get_running_loop().time()
        named, failures = False, 0
        while True:
            if lost := await self._source_lost():
                return lost
            try:
                seen = await self._look(snapshot_id)
            except psycopg.Error as exc:
                failures += 1
                what = classify(exc).what
                if failures >= TARGET_TRIES:
                    return f"the target is out of reach after {failures} tries ({what})"
                log.warning("snapshot %s: cannot look at the target (%s)", snapshot_id, what)
            else:
                failures = 0
                held = asyncio.get_running_loop().time() - exported
                if why := verdict(seen, named, held, self.request.lease_seconds):
                    return why
                if seen.slices and not named:
                    log.info("snapshot %s: named by %d extract slices", snapshot_id, seen.slices)
                named = named or seen.slices > 0
            if await self._stopped(POLL_SECONDS * 2**failures):
                return "asked to stop (a signal)"

    async def _source_lost(self) -> str | None:
        """Why the holding transaction is gone (None: it is still there)."""
        assert self.source is not None
        try:
            await self.source.execute("SELECT 1")
        except psycopg.Error as exc:
            return f"the source connection is lost ({classify(exc).what})"
        return None

    async def _look(self, snapshot_id: str) -> Seen:
        if self.target is None or self.target.closed:
            self.target = await _connect(self.request.target)
        params = {"migration": self.migration_id, "snapshot": snapshot_id}
        try:
            row = await (await self.target.execute(LOOK, params)).fetchone()
        except psycopg.errors.UndefinedTable:
            return Seen()  # no checkpoint yet: extract has not prepared the target
        except psycopg.Error:
            await self.target.close()  # the next look connects again
            raise
        assert row is not None
        slices, running, idle, cancelled = row
        return Seen(cancelled, slices, running, idle)

    async def _stopped(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            return False
        return True


async def _connect(conninfo: str, **more: str) -> Conn:
    """An autocommit session of the keeper's (each look at the target sees `now()` anew)."""
    return await AsyncConnection.connect(
        make_conninfo(conninfo, **SESSION, **more), autocommit=True
    )


def report(answer: dict[str, Any]) -> bool:
    """Write the keeper's answer as one JSON line and close stdout (fd 1 then
    points at /dev/null); False if nobody reads it any more."""
    try:
        os.write(1, json.dumps(answer).encode() + b"\n")
    except BrokenPipeError:
        return False
    finally:
        _to_null(1)
    return True


def _to_null(fd: int) -> None:
    """Close `fd`, leaving /dev/null in its place (so that no later file takes its number)."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, fd)
    os.close(null)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m streams.dataplane.keeper <migration id>", file=sys.stderr)
        return exits.MISCONFIGURED
    try:
        request = Request.decode(sys.stdin.buffer.read())
    except (ValueError, TypeError) as exc:
        print(f"snapshot keeper: bad request on stdin ({type(exc).__name__})", file=sys.stderr)
        return exits.MISCONFIGURED
    _to_null(0)
    log_to_stderr(request.log_level, list(request.secrets))
    return asyncio.run(Keeper(argv[1], request).run())

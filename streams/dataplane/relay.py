"""How a chunk's rows travel from the source's `COPY ... TO STDOUT` to the
target's `COPY ... FROM STDIN` (the target side stays in the chunk's
transaction, with its checkpoint).

The worker relays the rows itself, gathered into blocks of a megabyte. With
PHASE_COPY_RELAY=psql (and `psql`, PostgreSQL's own client, installed) the
source side is read by `psql` instead: it imports the snapshot and writes the
COPY stream to a pipe, which the worker reads in blocks and writes on. A COPY
stream is one protocol message per row, and relaying them in Python costs
the worker about twice the CPU `psql` does; on an idle machine the worker's
own relay is still the faster (README, Libraries), so it is the default.

`psql` is given the connection in its environment (PGHOST, PGUSER, ...); the
password, when there is one, in a password file that exists only in memory
(a memfd, PGPASSFILE=/dev/fd/N), never on its command line or on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from streams.dataplane.database import Database
from streams.dataplane.errors import PhaseError, TransientError
from streams.dataplane.failures import LOST_STATES
from streams.dataplane.snapshots import reading
from streams.dataplane.sql import STABLE_TEXT

BLOCK = 1 << 20  # bytes written to the target at a time
# libpq's connection keywords psql takes from its environment
ENVIRONMENT = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "options": "PGOPTIONS",
}
Write = Callable[[bytes | bytearray], Awaitable[None]]


def psql() -> str | None:
    """The `psql` this worker relays with when PHASE_COPY_RELAY=psql."""
    if os.environ.get("PHASE_COPY_RELAY", "python") != "psql":
        return None
    return shutil.which("psql")


async def relay(source: Database, snapshot: str | None, query: sql.Composed, write: Write) -> int:
    """Stream `query` (a COPY ... TO STDOUT) from `source`, read in
    `snapshot`, into `write`; the bytes relayed."""
    program = psql()
    params = conninfo_to_dict(source.conninfo())
    if program is None or set(params) - set(ENVIRONMENT) - {"password", "application_name"}:
        return await _in_python(source, snapshot, query, write)
    async with reading(source, snapshot) as conn:  # the snapshot is importable, or SnapshotLost
        text = query.as_string(conn)
    return await _through_psql(program, source.name, params, snapshot, text, write)


async def _in_python(
    source: Database, snapshot: str | None, query: sql.Composed, write: Write
) -> int:
    copied = 0
    async with reading(source, snapshot) as conn:
        await conn.execute(STABLE_TEXT)
        async with conn.cursor().copy(query) as out:
            block = bytearray()
            async for data in out:  # one row a message: written on in big blocks
                block += data
                if len(block) >= BLOCK:
                    copied += len(block)
                    await write(block)
                    block = bytearray()
            copied += len(block)
            await write(block)
    return copied


async def _through_psql(
    program: str,
    name: str,
    params: dict[str, str | int | None],
    snapshot: str | None,
    query: str,
    write: Write,
) -> int:
    statements = [
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        f"SET TRANSACTION SNAPSHOT '{snapshot}'",
        STABLE_TEXT,
        query,
    ]
    args = [program, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"]
    for statement in statements:
        args += ["-c", statement]
    copied = 0
    async with _password_file(params.get("password")) as (env, fds):
        env.update(_environment(params))
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            pass_fds=fds,
        )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        errors = asyncio.ensure_future(proc.stderr.read())
        while block := await proc.stdout.read(BLOCK):
            copied += len(block)
            await write(block)
        code = await proc.wait()
        if code != 0:
            raise _failure(name, (await errors).decode(errors="replace"))
        errors.cancel()
    finally:
        if proc.returncode is None:  # stopped, or the target failed: end the reader
            proc.kill()
            await proc.wait()
    return copied


def _environment(params: dict[str, str | int | None]) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "PGAPPNAME": "migrator-chunk"}
    for key, value in params.items():
        if key in ENVIRONMENT and value is not None:
            env[ENVIRONMENT[key]] = str(value)
    return env


@asynccontextmanager
async def _password_file(
    password: str | int | None,
) -> AsyncIterator[tuple[dict[str, str], tuple[int, ...]]]:
    """PGPASSFILE for one child: a memfd (mode 0600) holding `*:*:*:*:password`."""
    if password is None:
        yield {}, ()
        return
    fd = os.memfd_create("pgpass")
    try:
        os.fchmod(fd, 0o600)
        escaped = str(password).replace("\\", "\\\\").replace(":", "\\:")
        os.write(fd, f"*:*:*:*:{escaped}\n".encode())
        os.lseek(fd, 0, os.SEEK_SET)
        yield {"PGPASSFILE": f"/dev/fd/{fd}"}, (fd,)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _failure(name: str, stderr: str) -> PhaseError:
    """What psql's error means: a lost or refused connection is transient."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next((line for line in lines if line.startswith(("ERROR:", "FATAL:"))), None)
    if first is None:  # no server error: it could not connect, or lost the connection
        what = lines[-1] if lines else "psql failed"
        return TransientError(f"{name}: {what}", name, unavailable=True)
    # "ERROR:  22P02: invalid input syntax ..." with VERBOSITY=verbose
    body = first.split(":", 1)[1].strip()
    state, _, message = body.partition(": ")
    if state in LOST_STATES or state.startswith(("08", "57P")):
        return TransientError(f"{name}: connection lost ({message})", name, unavailable=True)
    return PhaseError(f"{name}: {message or body}")

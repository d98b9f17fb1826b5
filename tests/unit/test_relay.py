"""The chunk relay's pieces that need no database: the in-memory password
file psql is given, the environment it connects with, and what its errors
mean."""

from __future__ import annotations

import asyncio
import os
import stat

from streams.dataplane.errors import PhaseError, TransientError
from streams.dataplane.relay import _environment, _failure, _password_file


async def test_the_password_file_is_private_in_memory_and_read_by_a_child() -> None:
    async with _password_file("p:w\\d") as (env, fds):
        path = env["PGPASSFILE"]
        assert path.startswith("/dev/fd/") and fds == (int(path.rsplit("/", 1)[1]),)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "memfd:" in os.readlink(path)  # not a file on any disk
        child = await asyncio.create_subprocess_exec(
            "cat", path, stdout=asyncio.subprocess.PIPE, pass_fds=fds
        )
        out, _ = await child.communicate()
    assert out == b"*:*:*:*:p\\:w\\\\d\n"  # ':' and '\\' escaped as .pgpass wants


async def test_no_password_means_no_file() -> None:
    async with _password_file(None) as (env, fds):
        assert (env, fds) == ({}, ())


def test_the_connection_goes_to_psql_in_its_environment_without_the_password() -> None:
    env = _environment({"host": "db", "port": 5433, "dbname": "crm", "user": "u", "password": "s"})
    assert {k: v for k, v in env.items() if k.startswith("PG")} == {
        "PGHOST": "db",
        "PGPORT": "5433",
        "PGDATABASE": "crm",
        "PGUSER": "u",
        "PGAPPNAME": "migrator-chunk",
    }
    assert "s" not in env.values()


def test_a_lost_or_refused_connection_is_transient_anything_else_fails_the_phase() -> None:
    refused = _failure(
        "legacy",
        'psql: error: connection to server at "db" (10.0.0.1), port 5432 failed:'
        " Connection refused\n",
    )
    assert isinstance(refused, TransientError) and refused.unavailable
    lost = _failure("legacy", "FATAL:  57P01: terminating connection due to administrator command")
    assert isinstance(lost, TransientError) and "connection lost" in str(lost)
    bad = _failure("legacy", 'ERROR:  22P02: invalid input syntax for type integer: "x"\n')
    assert type(bad) is PhaseError
    assert str(bad) == 'legacy: invalid input syntax for type integer: "x"'

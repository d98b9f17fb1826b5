"""What a database error means for a phase (away, contention, permanent) and
how its reason reads: psycopg's own error types and SQLSTATEs, and the words
libpq and PostgreSQL use when a connection attempt fails (they carry no
SQLSTATE), as a PostgreSQL 15 server and psycopg 3.3 write them."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import errors
from psycopg_pool import PoolTimeout

from config import Settings
from config.connections import Connection
from streams.dataplane.breaker import BreakerState
from streams.dataplane.database import Database, is_transient
from streams.dataplane.errors import (
    BreakerOpen,
    Interrupted,
    PhaseError,
    SpecError,
    StatementCancelled,
    TransientError,
)
from streams.dataplane.failures import Failure, Kind, classify
from streams.dataplane.inflight import cancelling_on

AT = 'connection failed: connection to server at "127.0.0.1", port 45871 failed: '
RECOVERING = "database is not accepting connections (recovering)"

AWAY: list[tuple[BaseException, str]] = [
    (
        psycopg.OperationalError(
            AT + "Connection refused\n\tIs the server running on that host and accepting"
            " TCP/IP connections?"
        ),
        "cannot connect (connection refused)",
    ),
    (psycopg.OperationalError(AT + "FATAL:  the database system is starting up"), RECOVERING),
    (
        psycopg.OperationalError(
            AT + "FATAL:  the database system is not yet accepting connections\n"
            "DETAIL:  Consistent recovery state has not been yet reached."
        ),
        RECOVERING,
    ),
    (psycopg.OperationalError(AT + "FATAL:  the database system is in recovery mode"), RECOVERING),
    (
        psycopg.OperationalError(AT + "FATAL:  the database system is shutting down"),
        "database is not accepting connections (shutting down)",
    ),
    (
        psycopg.OperationalError(AT + "FATAL:  sorry, too many clients already"),
        "database is not accepting connections (too many connections)",
    ),
    (
        psycopg.OperationalError(
            AT + 'FATAL:  database "dwh" is not currently accepting connections'
        ),
        'database is not accepting connections (database "dwh" is not currently accepting'
        " connections)",
    ),
    (psycopg.errors.ConnectionTimeout("connection timeout expired"), "cannot connect (timed out)"),
    (
        psycopg.OperationalError(
            "consuming input failed: server closed the connection unexpectedly\n"
            "\tThis probably means the server terminated abnormally"
        ),
        "connection lost (server closed the connection)",
    ),
    (
        psycopg.OperationalError("the connection is closed"),
        "connection lost (the connection is closed)",
    ),
    (errors.CannotConnectNow("the database system is starting up"), RECOVERING),
    (
        errors.AdminShutdown("terminating connection due to administrator command"),
        "connection lost (terminating connection due to administrator command)",
    ),
    (
        errors.CrashShutdown("terminating connection because of crash of another server process"),
        "connection lost (terminating connection because of crash of another server process)",
    ),
    (errors.ConnectionFailure("broken"), "connection lost (broken)"),
    (errors.ConnectionException("lost"), "connection lost (lost)"),
    (
        errors.TooManyConnections("too many"),
        "database is not accepting connections (too many connections)",
    ),
    (
        PoolTimeout("couldn't get a connection after 10.00 sec"),
        "no pooled connection (couldn't get a connection after 10.00 sec)",
    ),
]


@pytest.mark.parametrize(("exc", "what"), AWAY, ids=lambda v: str(v)[:40])
def test_a_database_away_is_retried_within_the_budget_and_says_what_happened(
    exc: BaseException, what: str
) -> None:
    assert classify(exc) == Failure(Kind.UNAVAILABLE, what)
    assert is_transient(exc)
    assert "busy" not in what


@pytest.mark.parametrize(
    "exc",
    [
        errors.SerializationFailure("could not serialize access"),
        errors.DeadlockDetected("deadlock detected"),
        errors.LockNotAvailable("canceling statement due to lock timeout"),
        errors.DiskFull("could not extend file"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_lost_try_is_contention_retried_a_few_times(exc: BaseException) -> None:
    failure = classify(exc)
    assert failure.kind is Kind.CONTENTION and failure.what.startswith(type(exc).__name__)


TIMED_OUT = errors.QueryCanceled("canceling statement due to statement timeout")


def test_a_statement_the_server_cancelled_is_not_retried() -> None:
    failure = classify(TIMED_OUT)

    assert failure == Failure(
        Kind.CANCELLED, "QueryCanceled: canceling statement due to statement timeout"
    )
    assert not failure.transient and not is_transient(TIMED_OUT)


@pytest.mark.parametrize(
    ("exc", "what"),
    [
        (
            psycopg.OperationalError(AT + 'FATAL:  role "nobody" does not exist'),
            'cannot connect (role "nobody" does not exist)',
        ),
        (
            psycopg.OperationalError(AT + 'FATAL:  database "nodb" does not exist'),
            'cannot connect (database "nodb" does not exist)',
        ),
        (
            psycopg.OperationalError(
                AT + 'FATAL:  password authentication failed for user "migrator"'
            ),
            'cannot connect (password authentication failed for user "migrator")',
        ),
        (errors.UndefinedTable("relation x does not exist"), "UndefinedTable: relation x"),
        (errors.UniqueViolation("duplicate key"), "UniqueViolation: duplicate key"),
        (errors.ProgramLimitExceeded("too many columns"), "ProgramLimitExceeded: too many"),
        (psycopg.InterfaceError("the cursor is closed"), "InterfaceError: the cursor is closed"),
        (ValueError("bad"), "ValueError: bad"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_what_a_retry_would_not_change_fails_at_once(exc: BaseException, what: str) -> None:
    failure = classify(exc)
    assert failure.kind is Kind.PERMANENT and failure.what.startswith(what)
    assert not is_transient(exc)


def test_our_own_errors_say_what_they_are() -> None:
    assert classify(TransientError("away", "w", unavailable=True)).kind is Kind.UNAVAILABLE
    assert classify(TransientError("deadlock", "w")).kind is Kind.CONTENTION
    assert classify(BreakerOpen("open", "w", 1.0)).kind is Kind.UNAVAILABLE
    assert classify(SpecError("no such column")).kind is Kind.PERMANENT


SECRET = "s3cret-Pa55"


@pytest.fixture
def warehouse() -> Database:
    connection = Connection(port=1, database="dwh", user="migrator", password=SECRET)
    return Database("warehouse", connection, Settings(phase={"breaker_failure_threshold": 2}))


async def test_a_database_away_becomes_a_transient_error_naming_the_connection(
    warehouse: Database,
) -> None:
    refused = psycopg.OperationalError(AT + "Connection refused")

    found = await warehouse._failed(refused, foreign=False)

    assert isinstance(found, TransientError) and found.unavailable
    assert (str(found), found.connection) == (
        "warehouse: cannot connect (connection refused)",
        "warehouse",
    )
    await warehouse._failed(refused, foreign=False)
    assert warehouse.breaker.state is BreakerState.OPEN


async def test_a_lost_connection_inside_a_sound_one_is_passed_to_its_owner(
    warehouse: Database,
) -> None:
    lost = psycopg.OperationalError("consuming input failed: server closed the connection")

    assert await warehouse._failed(lost, foreign=True) is lost
    assert warehouse.breaker.failures == 0


async def test_a_refused_login_fails_the_phase_naming_the_connection(warehouse: Database) -> None:
    refused = psycopg.OperationalError(AT + 'FATAL:  role "nobody" does not exist')

    found = await warehouse._failed(refused, foreign=False)

    assert type(found) is PhaseError and not found.retriable
    assert str(found) == 'warehouse: cannot connect (role "nobody" does not exist)'


async def test_contention_is_transient_but_says_the_database_answered(
    warehouse: Database,
) -> None:
    found = await warehouse._failed(errors.DeadlockDetected("deadlock detected"), foreign=True)

    assert isinstance(found, TransientError) and not found.unavailable
    assert str(found) == "warehouse: DeadlockDetected: deadlock detected"
    assert warehouse.breaker.failures == 0


async def test_a_secret_in_a_message_is_masked(warehouse: Database) -> None:
    leaky = psycopg.OperationalError(AT + f"FATAL:  odd message with {SECRET} in it")

    found = await warehouse._failed(leaky, foreign=False)

    assert SECRET not in str(found) and "***" in str(found)


async def test_a_statement_timeout_fails_at_once_and_never_counts_against_the_breaker(
    warehouse: Database,
) -> None:
    for _ in range(3):  # more than the threshold
        found = await warehouse._failed(TIMED_OUT, foreign=False)

        assert type(found) is StatementCancelled and not found.retriable
        assert (
            str(found) == "warehouse: QueryCanceled: canceling statement due to statement timeout"
        )
    assert (warehouse.breaker.state, warehouse.breaker.failures) == (BreakerState.CLOSED, 0)


async def test_a_statement_cancelled_because_its_run_stops_interrupts_the_run(
    warehouse: Database,
) -> None:
    stop = asyncio.Event()
    stop.set()
    cancelled = errors.QueryCanceled("canceling statement due to user request")

    async with cancelling_on(stop):
        found = await warehouse._failed(cancelled, foreign=False)

    assert type(found) is Interrupted and not found.retriable
    assert (warehouse.breaker.state, warehouse.breaker.failures) == (BreakerState.CLOSED, 0)

"""What a database error means for a phase: the database is away (retry
until the time budget is spent), one statement lost a race (retry a few
times), the server cancelled the statement (its statement timeout, or a
cancel request: fail at once, a retry would run as long again), or nothing a
retry would change (fail).

A failed connection attempt carries no SQLSTATE (libpq reports it as text),
so it is told by the server's message: "the database system is starting
up" (57P03) and the like. An error of an open connection carries its
SQLSTATE: 57P01 admin_shutdown, 57P03 cannot_connect_now, class 08 and so
on. The words returned say what happened to whoever reads the phase's
reason; they never hold a secret (libpq's messages name host, port, user and
database, never the password).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import psycopg
from psycopg_pool import PoolTimeout

from domain.errors import MigratorError
from streams.dataplane.errors import TransientError


class Kind(enum.Enum):
    UNAVAILABLE = "unavailable"  # the database is away: retried within the time budget
    CONTENTION = "contention"  # it answered, but this try lost: retried a few times
    CANCELLED = "cancelled"  # the server cancelled the statement: it would run as long again
    PERMANENT = "permanent"  # the same call would fail again


@dataclass(frozen=True)
class Failure:
    kind: Kind
    what: str  # e.g. "cannot connect (connection refused)"

    @property
    def transient(self) -> bool:
        return self.kind in (Kind.UNAVAILABLE, Kind.CONTENTION)


RECOVERING = "database is not accepting connections (recovering)"
TOO_MANY = "database is not accepting connections (too many connections)"
# Server messages of a failed connection attempt, in the order they are tried.
CONNECT_MESSAGES: tuple[tuple[str, Kind, str], ...] = (
    ("the database system is starting up", Kind.UNAVAILABLE, RECOVERING),
    ("the database system is in recovery mode", Kind.UNAVAILABLE, RECOVERING),
    ("the database system is not yet accepting connections", Kind.UNAVAILABLE, RECOVERING),
    ("the database system is not accepting connections", Kind.UNAVAILABLE, RECOVERING),
    (
        "the database system is shutting down",
        Kind.UNAVAILABLE,
        "database is not accepting connections (shutting down)",
    ),
    (
        "too many clients already",
        Kind.UNAVAILABLE,
        TOO_MANY,
    ),
    (
        "remaining connection slots are reserved",
        Kind.UNAVAILABLE,
        TOO_MANY,
    ),
    ("connection refused", Kind.UNAVAILABLE, "cannot connect (connection refused)"),
    ("timeout expired", Kind.UNAVAILABLE, "cannot connect (timed out)"),
    (
        "server closed the connection unexpectedly",
        Kind.UNAVAILABLE,
        "cannot connect (server closed the connection)",
    ),
)
# A refusal that will not go away by itself: a login or a name is wrong.
REFUSALS = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
    "password",
)
# admin_shutdown, crash_shutdown, idle_session_timeout, idle_in_transaction_session_timeout
LOST_STATES = frozenset({"57P01", "57P02", "57P05", "25P03"})
# lock_not_available (a lock timeout), disk_full, out_of_memory; and class 40,
# transaction rollback (serialization failure, deadlock)
CONTENTION_STATES = frozenset({"55P03", "53100", "53200"})
# query_canceled: a statement timeout, or a cancel request (pg_cancel_backend,
# or the phase run's own when it is asked to stop)
CANCELLED_STATE = "57014"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def classify(exc: BaseException) -> Failure:
    """What `exc` means for the call that raised it, and how to say so."""
    if isinstance(exc, TransientError):
        return Failure(Kind.UNAVAILABLE if exc.unavailable else Kind.CONTENTION, str(exc))
    if isinstance(exc, MigratorError):
        return Failure(Kind.CONTENTION if exc.retriable else Kind.PERMANENT, str(exc))
    if isinstance(exc, PoolTimeout):
        return Failure(Kind.UNAVAILABLE, f"no pooled connection ({_text(exc)})")
    if not isinstance(exc, psycopg.OperationalError):
        return Failure(Kind.PERMANENT, first_line(exc))
    if isinstance(exc, psycopg.errors.ConnectionTimeout):
        return Failure(Kind.UNAVAILABLE, "cannot connect (timed out)")
    if exc.sqlstate:
        return _by_state(exc, exc.sqlstate)
    return _by_message(_text(exc))


def _by_state(exc: psycopg.Error, state: str) -> Failure:
    message = exc.diag.message_primary or _text(exc)
    if state == "57P03":
        return Failure(Kind.UNAVAILABLE, RECOVERING)
    if state == "53300":
        return Failure(Kind.UNAVAILABLE, TOO_MANY)
    if state in LOST_STATES or state.startswith("08"):
        return Failure(Kind.UNAVAILABLE, f"connection lost ({message})")
    if state in CONTENTION_STATES or state.startswith("40"):
        return Failure(Kind.CONTENTION, f"{type(exc).__name__}: {message}")
    if state == CANCELLED_STATE:
        return Failure(Kind.CANCELLED, f"{type(exc).__name__}: {message}")
    return Failure(Kind.PERMANENT, first_line(exc))


def _by_message(text: str) -> Failure:
    """An error with no SQLSTATE: a connection attempt that failed, or an
    open connection that broke."""
    lowered = text.lower()
    if lowered.startswith("connection failed") or "connection to server" in lowered:
        return _connect_failure(text)
    if "server closed the connection" in lowered:
        return Failure(Kind.UNAVAILABLE, "connection lost (server closed the connection)")
    return Failure(Kind.UNAVAILABLE, f"connection lost ({text})")


def _connect_failure(text: str) -> Failure:
    lowered = text.lower()
    for words, kind, what in CONNECT_MESSAGES:
        if words in lowered:
            return Failure(kind, what)
    cause = _server_words(text)
    if any(words in cause.lower() for words in REFUSALS):
        return Failure(Kind.PERMANENT, f"cannot connect ({cause})")
    if "accepting connections" in cause.lower():  # e.g. ALLOW_CONNECTIONS false
        return Failure(Kind.UNAVAILABLE, f"database is not accepting connections ({cause})")
    return Failure(Kind.UNAVAILABLE, f"cannot connect ({cause})")


def _server_words(text: str) -> str:
    """`connection failed: connection to server at "h", port p failed: FATAL:  why`
    -> `why`."""
    line = text.split("failed:")[-1].strip()
    return line.removeprefix("FATAL:").strip() or text


def _text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__

"""The databases a phase worker moves rows between: one pool, one circuit
breaker and one retry policy per named connection.

Each error is told apart by streams.dataplane.failures. The database away
(connection lost or refused, recovering, no pooled connection) counts
against the connection's breaker and becomes a `TransientError` marked
`unavailable`; a try lost to contention (serialization failure, deadlock,
lock timeout) a plain `TransientError`. streams.dataplane.retry tries the
whole transaction again. A statement the server cancelled is
`Interrupted` when its run was asked to stop (streams.dataplane.inflight
sent the cancel), else `StatementCancelled` (its statement timeout): neither
is retried nor counted against the breaker. Anything else fails at once.
Messages name the connection and say what happened, never a secret.

A pool checks each connection before handing it out, so one that died with
its server is dropped and replaced, not handed out. Its reconnection
attempts back off exponentially; they are bounded by one pool timeout, so
while a database restarts the pool tries every few seconds, and a batch
that timed out starts a fresh attempt when it tries again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from config import Settings
from config.connections import Connection
from config.errors import UnknownConnection
from streams.dataplane import inflight, metrics
from streams.dataplane.breaker import BreakerState, CircuitBreaker
from streams.dataplane.errors import (
    BreakerOpen,
    Interrupted,
    PhaseError,
    SpecError,
    StatementCancelled,
    TransientError,
)
from streams.dataplane.failures import Failure, Kind, classify
from streams.dataplane.retry import retrying

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = inflight.Conn
PROBE_TIMEOUT = 5
# The databases whose `connection()` blocks enclose the running code (extract
# reads the source inside a target transaction).
ENCLOSING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("enclosing", default=())


def is_transient(exc: BaseException) -> bool:
    """Would the same call likely succeed a little later?"""
    return classify(exc).transient


class Database:
    """One named connection: its pool, its breaker, and transactions with retry."""

    def __init__(self, name: str, connection: Connection, settings: Settings) -> None:
        self.name, self.settings = name, settings
        self.last_error = ""
        self.prepared = False
        self.in_use = 0  # connections handed out and not yet back
        self.breaker = CircuitBreaker(
            settings.phase.breaker_failure_threshold,
            settings.phase.breaker_reset_seconds,
            on_change=self._breaker_changed,
        )
        metrics.BREAKER.labels(name).set(BreakerState.CLOSED)
        self._conninfo = connection.conninfo()  # holds the secret: never logged
        self._secret = str(conninfo_to_dict(self._conninfo).get("password") or "")
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._conninfo,
            min_size=0,
            max_size=settings.phase.pool_max,
            open=False,
            kwargs={"autocommit": True},
            configure=self._configure,
            check=AsyncConnectionPool.check_connection,
            timeout=settings.phase.pool_timeout_seconds,
            reconnect_timeout=settings.phase.pool_timeout_seconds,
            name=name,
        )

    def conninfo(self) -> str:
        """The libpq connection string, for a process of its own that connects
        (streams.dataplane.keeper): it holds the secret, so never log it."""
        return self._conninfo

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def _configure(self, conn: Conn) -> None:
        ms = int(self.settings.phase.statement_timeout_seconds * 1000)
        await conn.execute(f"SET statement_timeout = {ms}")
        await conn.execute(f"SET idle_in_transaction_session_timeout = {max(ms, 60_000)}")
        await conn.execute(f"SET lock_timeout = {max(ms // 2, 30_000)}")

    async def _failure(self, exc: Exception) -> Failure:
        found = await self._diagnose() if isinstance(exc, PoolTimeout) else classify(exc)
        if self._secret and self._secret in found.what:
            return Failure(found.kind, found.what.replace(self._secret, "***"))
        return found

    async def _diagnose(self) -> Failure:
        """Why no pooled connection came in time (the pool only logs that):
        one direct attempt tells whether the database takes connections at
        all; if it does, whether every connection is really in use."""
        try:
            probe = await AsyncConnection.connect(self._conninfo, connect_timeout=PROBE_TIMEOUT)
        except psycopg.Error as cause:
            return classify(cause)
        await probe.close()
        seconds = f"{self.pool.timeout:g} s"
        if self.in_use >= self.pool.max_size:  # the database is up: a try lost to the others
            return Failure(
                Kind.CONTENTION,
                f"all {self.pool.max_size} connections busy (none free within {seconds})",
            )
        return Failure(Kind.UNAVAILABLE, f"no pooled connection within {seconds} (reconnecting)")

    def _breaker_changed(self, state: BreakerState) -> None:
        metrics.BREAKER.labels(self.name).set(state)
        log.warning("circuit breaker of connection %s is %s", self.name, state.name)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection, through the breaker; this connection's errors
        become what streams.dataplane.failures makes of them."""
        trial = self.breaker.state is BreakerState.HALF_OPEN
        if not self.breaker.allow():
            raise BreakerOpen(
                f"{self.name}: circuit breaker open after {self.breaker.failures} failures"
                f" in a row (last: {self.last_error})",
                self.name,
                self.breaker.retry_in(),
            )
        held: Conn | None = None
        nested = bool(ENCLOSING.get())
        try:
            async with self.pool.connection() as conn:
                held = conn
                async with self._held(conn):
                    yield conn
        except TransientError as exc:  # raised inside this one's work: counted where it arose
            # Another database's says nothing about this one; this one's was
            # counted by the block that met it, or was a breaker held shut
            # (a nested call while this block is the half-open trial). Either
            # way a trial must end here, or no call would ever try again.
            if exc.connection != self.name or trial:
                self.breaker.release()
            raise
        except Exception as exc:
            foreign = nested and held is not None and not held.closed
            failed = await self._failed(exc, foreign=foreign)
            if failed is exc:
                raise
            raise failed from exc
        except BaseException:  # cancelled: it says nothing about the database
            self.breaker.release()
            raise
        else:
            self.breaker.success()

    @asynccontextmanager
    async def _held(self, conn: Conn) -> AsyncIterator[None]:
        """While `conn` is out of the pool: counted in use, named as enclosing,
        and registered with the run, which cancels its statement on a stop."""
        run = inflight.current()
        self.in_use += 1
        token = ENCLOSING.set((*ENCLOSING.get(), self.name))
        if run is not None:
            run.hold(conn)
        try:
            yield
        finally:
            ENCLOSING.reset(token)
            self.in_use -= 1
            if run is not None:
                await run.release(conn)

    async def _failed(self, exc: Exception, foreign: bool) -> Exception:
        """The error to raise for `exc`, once the breaker has counted it.
        A lost connection may be `foreign`: raised inside this block, which
        is inside another database's, while this connection is sound (the
        target's, inside the source's block); it passes through to its owner."""
        failure = await self._failure(exc)
        if failure.kind is Kind.UNAVAILABLE and foreign:
            self.breaker.release()
            return exc
        if failure.kind is Kind.UNAVAILABLE:
            self.last_error = failure.what
            self.breaker.failure()
            return TransientError(f"{self.name}: {failure.what}", self.name, unavailable=True)
        if failure.kind is Kind.CANCELLED and inflight.stopping():
            self.breaker.release()  # our own cancel: it says nothing about the database
            return Interrupted(f"{self.name}: stopped ({failure.what})")
        if isinstance(exc, psycopg.Error | PoolTimeout):
            self.breaker.success()  # the database answered
        else:
            self.breaker.release()
        if failure.kind is Kind.CONTENTION:
            return TransientError(f"{self.name}: {failure.what}", self.name)
        if failure.kind is Kind.CANCELLED:
            return StatementCancelled(f"{self.name}: {failure.what}")
        if isinstance(exc, psycopg.OperationalError | PoolTimeout):
            return PhaseError(f"{self.name}: {failure.what}")
        return exc

    async def transaction(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """`work(conn)` inside one transaction, retried whole on transient errors."""

        async def once() -> T:
            async with self.connection() as conn, conn.transaction():
                return await work(conn)

        return await retrying(self.settings, once)

    async def autocommit(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """`work(conn)` on an autocommit connection (reads), retried on transient errors."""

        async def once() -> T:
            async with self.connection() as conn:
                return await work(conn)

        return await retrying(self.settings, once)

    async def dedicated(
        self, setup: Callable[[Conn], Awaitable[T]], replication: bool = False
    ) -> tuple[Conn, T]:
        """A connection of its own, outside the pool, once `setup(conn)` ran on
        it (retried as a transaction is); the caller closes it. For one held
        open for long (a snapshot's holder), which must not take a pooled
        connection from the batches. `replication`: a `replication=database`
        session (one that may create a replication slot)."""
        conninfo = make_conninfo(self._conninfo, replication="database") if replication else None

        async def once() -> tuple[Conn, T]:
            conn: Conn | None = None
            try:
                conn = await AsyncConnection.connect(conninfo or self._conninfo, autocommit=True)
                return conn, await setup(conn)
            except Exception as exc:
                if conn is not None:
                    await conn.close()
                failed = await self._failed(exc, foreign=False)
                if failed is exc:
                    raise
                raise failed from exc

        return await retrying(self.settings, once)


class Databases:
    """The named databases of one worker, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.by_name: dict[str, Database] = {}
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> Database:
        async with self._lock:
            return await self._get(name)

    async def _get(self, name: str) -> Database:
        if name not in self.by_name:
            try:
                connection = self.settings.phase.connection(name)
            except UnknownConnection as exc:
                raise SpecError(str(exc)) from None
            database = Database(name, connection, self.settings)
            await database.open()
            self.by_name[name] = database
        return self.by_name[name]

    def pools(self) -> dict[str, AsyncConnectionPool[Conn]]:
        return {name: db.pool for name, db in self.by_name.items()}

    async def close(self) -> None:
        for database in self.by_name.values():
            await database.close()

"""The databases a phase worker moves rows between: one pool, one circuit
breaker and one retry policy per named connection.

A transient failure (the server away, a dropped connection, a timeout, a
serialization failure or deadlock) counts against the connection's breaker
and is retried with exponential backoff and jitter, a bounded number of
times; anything else fails at once. Messages name the connection, never its
secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from config import Settings
from config.connections import Connection
from config.errors import UnknownConnection
from domain.errors import MigratorError
from streams.dataplane import metrics
from streams.dataplane.breaker import BreakerState, CircuitBreaker
from streams.dataplane.errors import BreakerOpen, SpecError, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = AsyncConnection[tuple[Any, ...]]


def is_transient(exc: BaseException) -> bool:
    """Would the same call likely succeed a little later? Ours say so themselves."""
    if isinstance(exc, MigratorError):
        return exc.retriable
    return isinstance(exc, PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError)


def retriable(exc: BaseException) -> bool:
    """What the retry policy retries: our errors that say so (a transient
    database error has become a TransientError of its connection by then)."""
    return isinstance(exc, MigratorError) and exc.retriable


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class Database:
    """One named connection: its pool, its breaker, and transactions with retry."""

    def __init__(self, name: str, connection: Connection, settings: Settings) -> None:
        self.name, self.settings = name, settings
        self.last_error = ""
        self.prepared = False
        self.breaker = CircuitBreaker(
            settings.phase.breaker_failure_threshold,
            settings.phase.breaker_reset_seconds,
            on_change=self._breaker_changed,
        )
        metrics.BREAKER.labels(name).set(BreakerState.CLOSED)
        self._conninfo = connection.conninfo()  # holds the secret: never logged
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._conninfo,
            min_size=0,
            max_size=settings.phase.pool_max,
            open=False,
            kwargs={"autocommit": True},
            configure=self._configure,
            check=AsyncConnectionPool.check_connection,
            timeout=settings.phase.pool_timeout_seconds,
            name=name,
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def _configure(self, conn: Conn) -> None:
        ms = int(self.settings.phase.statement_timeout_seconds * 1000)
        await conn.execute(f"SET statement_timeout = {ms}")
        await conn.execute(f"SET idle_in_transaction_session_timeout = {max(ms, 60_000)}")
        await conn.execute(f"SET lock_timeout = {max(ms // 2, 30_000)}")

    async def _diagnose(self, exc: BaseException) -> str:
        """What went wrong; for a pool timeout, why no connection could be made
        (the pool only logs that), from one direct attempt."""
        if not isinstance(exc, PoolTimeout):
            return first_line(exc)
        try:
            probe = await AsyncConnection.connect(self._conninfo, connect_timeout=5)
        except psycopg.Error as cause:
            return first_line(cause)
        await probe.close()
        return f"all {self.pool.max_size} connections busy ({first_line(exc)})"

    def _breaker_changed(self, state: BreakerState) -> None:
        metrics.BREAKER.labels(self.name).set(state)
        log.warning("circuit breaker of connection %s is %s", self.name, state.name)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection, through the breaker; transient errors of this
        connection become `TransientError` and count against the breaker."""
        if not self.breaker.allow():
            raise BreakerOpen(
                f"circuit breaker open for connection {self.name} after "
                f"{self.breaker.failures} failures (last: {self.last_error}); "
                f"next trial in {self.breaker.retry_in():.0f} s",
                self.name,
                self.breaker.retry_in(),
            )
        try:
            async with self.pool.connection() as conn:
                yield conn
        except TransientError as exc:
            if exc.connection == self.name:
                raise
            self.breaker.release()
            raise
        except Exception as exc:
            if is_transient(exc):
                self.last_error = await self._diagnose(exc)
                self.breaker.failure()
                message = f"connection {self.name}: {self.last_error}"
                raise TransientError(message, self.name) from exc
            if isinstance(exc, psycopg.Error):
                self.breaker.success()
            else:
                self.breaker.release()
            raise
        else:
            self.breaker.success()

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


async def retrying(settings: Settings, call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, retried on retriable errors with backoff and jitter, bounded."""

    def count(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        name = exc.connection if isinstance(exc, TransientError) else ""
        metrics.RETRIES.labels(name).inc()
        log.warning("retrying after %s (attempt %d)", exc, state.attempt_number)

    backoff = wait_random_exponential(multiplier=0.2, max=settings.phase.retry_max_seconds)

    def wait(state: RetryCallState) -> float:
        # An open breaker: wait for its trial rather than spend an attempt.
        exc = state.outcome.exception() if state.outcome else None
        until_trial = exc.retry_in + 0.05 if isinstance(exc, BreakerOpen) else 0.0
        return max(backoff(state), until_trial)

    async for attempt in AsyncRetrying(
        retry=retry_if_exception(retriable),
        wait=wait,
        stop=stop_after_attempt(settings.phase.retry_attempts),
        before_sleep=count,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


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

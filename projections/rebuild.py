"""Rebuild the read model by replay, without downtime.

The whole of `migration.events` (read_committed) is projected, with the live
projector's own batch code, into shadow tables in a schema `rebuild_<id>`
while the live projector and the API go on using the live tables. The
shadow's secondary indexes are built once the replay has caught up
(`projections.indexes`); it catches up again if that let it fall behind by
more than `swap_lag` records. Once the shadow is within `swap_lag` records of
the log's committed end, one transaction:

1. locks the live tables (`projection_offsets` first: every projector batch
   reads it first, so a batch in flight finishes before, and the next one
   waits on its first statement);
2. applies to the shadow the events between its offsets and the live
   projector's stored offsets, so both hold exactly the same events;
3. gives the shadow's rows feed versions above every one the live feed
   handed out (a live client's cursor sees every row once more, never less);
4. copies the live tables' grants, moves the live tables into `retired_<id>`
   and the shadow's into their place, and NOTIFYs "look at everything".

A projector batch that waited on the lock resumes on the new tables (PostgreSQL
looks a name up again once it gets a lock that a rename made stale), reads
the offsets the swap brought along, and its compare-and-set holds: nothing is
written into the retired tables after the swap, nothing is applied twice.
With no live tables (a lost database) the shadow simply becomes the read model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg import sql

from config import KafkaNames, Settings
from projections import indexes, store
from projections.batch import PROJECTION, Batch, apply_batch
from projections.event_log import open_log
from projections.exceptions import RebuildError, RebuildStopped
from projections.fold import Folded
from projections.row_cache import RowCache
from projections.schema import LOCK_ID, apply_schema

TABLES = (  # lock order: projection_offsets first (see above)
    "projection_offsets",
    "migrations",
    "migration_events",
    "migration_phases",
    "feed_version",
    "schema_migrations",
)
REPLAY_ROWS_KEPT = 100_000  # migrations whose rows the replay keeps in memory
SwapHook = Callable[[store.Conn, str, str], Awaitable[None]]


@dataclass
class Progress:
    """What the rebuild has done so far, for a progress display."""

    stage: str = "connecting"
    offsets_done: int = 0
    offsets_total: int = 0
    events: int = 0
    migrations: int = 0
    began: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        return self.events / max(1e-9, time.monotonic() - self.began)


@dataclass(frozen=True)
class Outcome:
    rebuild_id: str
    events: int
    migrations: int
    offsets: dict[int, int]
    retired: str | None  # the schema holding the old tables, when kept
    seconds: float


class Rebuild:
    """One rebuild run; `run()` returns when the shadow is the read model."""

    def __init__(
        self,
        settings: Settings,
        rebuild_id: str,
        *,
        keep_old: bool = False,
        swap_lag: int = 1000,
        lock_timeout: float = 5.0,
        on_progress: Callable[[Progress], None] = lambda _: None,
        on_swap: SwapHook | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.settings, self.id = settings, rebuild_id
        self.topic = KafkaNames(
            app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix
        ).events
        self.shadow, self.retired = f"rebuild_{rebuild_id}", f"retired_{rebuild_id}"
        self.keep_old, self.swap_lag, self.lock_timeout = keep_old, swap_lag, lock_timeout
        self.on_progress, self.on_swap = on_progress, on_swap
        self.stop = stop or asyncio.Event()
        self.progress = Progress()
        self._shifted = False
        self.rows = RowCache(REPLAY_ROWS_KEPT)  # the shadow's rows, as this run wrote them

    async def run(self) -> Outcome:
        conn = await _connect(self.settings)
        try:
            consumer = await self._consumer()
            try:
                return await self._run(conn, consumer)
            finally:
                await consumer.stop()
        except BaseException:
            await _drop_schema(conn, self.shadow)
            raise
        finally:
            await conn.close()

    async def _run(self, conn: store.Conn, consumer: AIOKafkaConsumer) -> Outcome:
        self.live = await _live_schema(conn)
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.shadow)))
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.shadow)))
        await apply_schema(conn)
        aside = await indexes.set_aside(conn, self.shadow)
        await self._catch_up(conn, consumer)
        self._report("indexing")
        await indexes.build(conn, aside)
        await self._catch_up(conn, consumer, "catching up")  # what came in meanwhile
        offsets = await self._swap_with_retries(conn, consumer)
        if not self.keep_old:
            await _drop_schema(conn, self.retired)
        self.progress.migrations = await _count(conn, "migrations")
        self._report("done")
        return Outcome(
            self.id,
            self.progress.events,
            self.progress.migrations,
            offsets,
            self.retired if self.keep_old else None,
            time.monotonic() - self.progress.began,
        )

    async def _consumer(self) -> AIOKafkaConsumer:
        consumer, partitions = await open_log(self.settings, self.topic, RebuildError)
        tps = [TopicPartition(self.topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self.first = {tp: await consumer.position(tp) for tp in tps}
        return consumer

    # -- catching up -------------------------------------------------------

    async def _catch_up(
        self, conn: store.Conn, consumer: AIOKafkaConsumer, stage: str = "replaying"
    ) -> None:
        """Replay until the shadow is within `swap_lag` records of the committed
        end (at least once, unless `stage` is "catching up")."""
        self._report(stage)
        while True:
            ends = await consumer.end_offsets(list(self.first))
            self.progress.offsets_total = sum(ends[tp] - self.first[tp] for tp in ends)
            behind = await self._behind(consumer, ends)
            if behind <= self.swap_lag and self.progress.stage == "catching up":
                return
            await self._read_to(conn, consumer, ends)
            self._report("catching up")

    async def _behind(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> int:
        behind = 0
        for tp, end in ends.items():
            behind += max(0, end - await consumer.position(tp))
        return behind

    async def _read_to(
        self, conn: store.Conn, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
    ) -> None:
        last_count = 0.0
        while await self._behind(consumer, ends) > 0:
            if self.stop.is_set():
                raise RebuildStopped("stopped before the swap; the live read model is unchanged")
            batch: Batch = await consumer.getmany(
                timeout_ms=500, max_records=self.settings.projector.batch_max
            )
            if batch:
                async with conn.transaction():
                    await _unsynced(conn)
                    folded = await self._apply(conn, batch, self.rows)
                self.rows.remember(folded)
            if time.monotonic() - last_count > 2:
                last_count = time.monotonic()
                self.progress.migrations = await _count(conn, "migrations")
            await self._positions(consumer)

    async def _apply(self, conn: store.Conn, batch: Batch, rows: RowCache | None = None) -> Folded:
        folded = await apply_batch(conn, self.topic, batch, notify=False, cache=rows)
        self.progress.events += len(folded.history)
        return folded

    async def _positions(self, consumer: AIOKafkaConsumer) -> None:
        done = [await consumer.position(tp) - first for tp, first in self.first.items()]
        self.progress.offsets_done = sum(done)
        self._report(self.progress.stage)

    def _report(self, stage: str) -> None:
        self.progress.stage = stage
        self.on_progress(self.progress)

    # -- the swap ----------------------------------------------------------

    async def _swap_with_retries(
        self, conn: store.Conn, consumer: AIOKafkaConsumer
    ) -> dict[int, int]:
        for attempt in range(1, 6):
            try:
                return await self._swap(conn, consumer)
            except psycopg.errors.LockNotAvailable:
                if attempt == 5:
                    raise RebuildError(
                        f"could not lock the live tables within {self.lock_timeout:g} s,"
                        " 5 times: a long transaction holds them (see pg_stat_activity)"
                    ) from None
                await self._catch_up(conn, consumer)
        raise AssertionError("unreachable")

    async def _swap(self, conn: store.Conn, consumer: AIOKafkaConsumer) -> dict[int, int]:
        await self._shift_feed(conn)
        self._report("swapping")
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
            live = await self._lock_live(conn)
            if "projection_offsets" in live:
                await self._match_live(conn, consumer)
                await self._renumber_feed(conn)
                await self._copy_grants(conn, live)
            offsets = await store.stored_offsets(conn, PROJECTION, self.topic)
            if self.on_swap is not None:
                await self.on_swap(conn, self.live, self.shadow)
            await self._move(conn, live)
            await self._notify(conn)
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.live)))
        return offsets

    async def _lock_live(self, conn: store.Conn) -> list[str]:
        """Lock the live tables that exist (none in a lost database)."""
        cur = await conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'r'",
            (self.live, list(TABLES)),
        )
        found = {row[0] for row in await cur.fetchall()}
        live = [t for t in TABLES if t in found]
        if live:
            names = sql.SQL(", ").join(self._live(t) for t in live)
            await conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(names))
        return live

    def _live(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.live), sql.Identifier(table))

    async def _match_live(self, conn: store.Conn, consumer: AIOKafkaConsumer) -> None:
        """Apply to the shadow what the live projector has applied and it has not."""
        cur = await conn.execute(
            sql.SQL("SELECT topic, partition, next_offset, projection FROM {}").format(
                self._live("projection_offsets")
            )
        )
        target: dict[int, int] = {}
        for topic, partition, offset, projection in await cur.fetchall():
            if (projection, topic) == (PROJECTION, self.topic):
                target[int(partition)] = int(offset)
            else:  # another projection's position: keep it
                await conn.execute(
                    "INSERT INTO projection_offsets VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (projection, topic, partition, offset),
                )
        shadow = await store.stored_offsets(conn, PROJECTION, self.topic)
        behind = {p: o for p, o in target.items() if shadow.get(p, 0) < o}
        for tp in self.first:
            if tp.partition in behind:
                consumer.seek(tp, shadow.get(tp.partition, self.first[tp]))
        await self._read_exactly(conn, consumer, behind)
        shadow = await store.stored_offsets(conn, PROJECTION, self.topic)
        short = {p: (shadow.get(p), o) for p, o in target.items() if shadow.get(p, 0) < o}
        if short:
            raise RebuildError(f"the shadow could not reach the live offsets: {short}")

    async def _read_exactly(
        self, conn: store.Conn, consumer: AIOKafkaConsumer, target: dict[int, int]
    ) -> None:
        """Apply each partition's records below `target` (inside the swap's transaction)."""
        pending = {tp: target[tp.partition] for tp in self.first if tp.partition in target}
        async with asyncio.timeout(60):
            while pending:
                fetched: Batch = await consumer.getmany(*pending, timeout_ms=500)
                batch = {
                    tp: kept
                    for tp, records in fetched.items()
                    if (kept := [r for r in records if r.offset < pending[tp]])
                }
                if batch:
                    await self._apply(conn, batch)
                for tp in list(pending):
                    if await consumer.position(tp) >= pending[tp]:
                        consumer.pause(tp)
                        del pending[tp]
        consumer.resume(*self.first)

    async def _shift_feed(self, conn: store.Conn) -> None:
        """Move the shadow's feed versions above the live feed's (once, before
        the lock), so that the swap renumbers only the few written since."""
        if self._shifted:
            return
        live = await self._live_feed(conn)
        async with conn.transaction():
            await conn.execute("UPDATE migrations SET feed_version = feed_version + %s", (live,))
            await conn.execute("UPDATE feed_version SET version = version + %s", (live,))
        self._shifted = True

    async def _live_feed(self, conn: store.Conn) -> int:
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    sql.SQL("SELECT version FROM {}").format(self._live("feed_version"))
                )
                row = await cur.fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0

    async def _renumber_feed(self, conn: store.Conn) -> None:
        """Rows at or below the live feed take the next versions above both feeds."""
        live = await self._live_feed(conn)
        cur = await conn.execute(
            "WITH base AS (SELECT greatest(version, %s) AS b FROM feed_version),"
            " stale AS (SELECT migration_id,"
            "  row_number() OVER (ORDER BY feed_version, migration_id) AS n"
            "  FROM migrations WHERE feed_version <= %s)"
            " UPDATE migrations m SET feed_version = base.b + stale.n FROM stale, base"
            " WHERE m.migration_id = stale.migration_id",
            (live, live),
        )
        await conn.execute(
            "UPDATE feed_version SET version = greatest(version, %s) + %s", (live, cur.rowcount)
        )

    async def _copy_grants(self, conn: store.Conn, live: list[str]) -> None:
        """Whatever was granted on a live table is granted on its successor."""
        for table in live:
            cur = await conn.execute(
                "SELECT a.privilege_type, a.grantee, a.is_grantable"
                " FROM pg_class c, aclexplode(c.relacl) a"
                " WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
                (f'"{self.live}"."{table}"',),
            )
            for privilege, grantee, grantable in await cur.fetchall():
                await conn.execute(_grant(table, privilege, await _role(conn, grantee), grantable))

    async def _move(self, conn: store.Conn, live: list[str]) -> None:
        if live:
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.retired)))
        for table in live:
            await conn.execute(
                sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    self._live(table), sql.Identifier(self.retired)
                )
            )
        for table in TABLES:
            await conn.execute(
                sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                    sql.Identifier(self.shadow), sql.Identifier(table), sql.Identifier(self.live)
                )
            )
        await conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(self.shadow)))

    async def _notify(self, conn: store.Conn) -> None:
        cur = await conn.execute(
            sql.SQL("SELECT version FROM {}").format(self._live("feed_version"))
        )
        row = await cur.fetchone()
        payload = json.dumps({"feed": int(row[0]) if row else 0, "m": {"*": 0}})
        await conn.execute("SELECT pg_notify(%s, %s)", (store.CHANNEL, payload))


def _grant(table: str, privilege: str, grantee: str, grantable: bool) -> sql.Composed:
    who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
    option = sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")
    return sql.SQL("GRANT {} ON {} TO {}{}").format(
        sql.SQL(privilege), sql.Identifier(table), who, option
    )


async def _role(conn: store.Conn, oid: int) -> str:
    if oid == 0:
        return "PUBLIC"
    cur = await conn.execute("SELECT rolname FROM pg_roles WHERE oid = %s", (oid,))
    row = await cur.fetchone()
    return str(row[0]) if row else "PUBLIC"


async def _connect(settings: Settings) -> store.Conn:
    dsn = settings.database.url.get_secret_value()
    try:
        return await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise RebuildError(f"the read model's database is unreachable: {exc}".strip()) from exc


async def _live_schema(conn: store.Conn) -> str:
    """Where the live tables are (or, in an empty database, will be)."""
    cur = await conn.execute(
        "SELECT coalesce((SELECT relnamespace::regnamespace::text FROM pg_class"
        " WHERE oid = to_regclass('migrations')), current_schema())"
    )
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise RebuildError("the database has no schema to hold the read model (search_path)")
    return str(row[0]).strip('"')


async def _unsynced(conn: store.Conn) -> None:
    """A replay batch commits without waiting for its WAL flush: a crash can
    lose only the last batches of the shadow, whole (never part of one), and
    the shadow is of use to no one but this run, which a crash ends. The
    swap waits for its flush, as every other transaction."""
    await conn.execute("SET LOCAL synchronous_commit = off")


async def _count(conn: store.Conn, table: str) -> int:
    cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _drop_schema(conn: store.Conn, schema: str) -> None:
    """Best effort on the way out: the error that got us here matters more."""
    with contextlib.suppress(psycopg.Error):
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )

"""diff: the target against the source, row by row, now.

The source is read as the mapping makes it (the target's shape: the
columns, values and types extract stages), in one REPEATABLE READ snapshot
of its own, and the target in one of its own; checksum bisection
(streams.dataplane.comparing) names every key that is missing from the
target, extra in it, or different. The report is saved in the target
database with every key (streams.dataplane.diff_store) and sent as a
DiffTaken result with the counts and a sample of keys; the orchestrator
records it (DiffRecorded) before the phase's outcome.

Extra keys count as differing (a repair deletes them) only when the target
holds nothing but the migration's rows: when load made it from the staged
rows or replaced its rows. A target loaded by append or upsert keeps rows
of its own, which a diff lists and a repair leaves alone.

It runs as a phase of its own (DiffMigration), inside reconcile when the
target's figures differ from the source's, and after a repair.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from domain import DiffTaken, SnapshotRef
from domain.errors import SpecError as DomainSpecError
from domain.spec import Column, parse_source_key
from schemas.records import to_plain
from streams.dataplane import catalog, checkpoints, checksums, chunks, diff_store, staged
from streams.dataplane.bisection import Found
from streams.dataplane.comparing import Bisection, Order, Side
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import SpecError
from streams.dataplane.sql import SHAPE, STABLE_TEXT, create_shape, expression, select_list, table

PHASE = "diff"
WHOLE = frozenset({"swapped", "replace"})  # how load left the target: only the migration's rows
SHAPED = "migrator_diff_shape"  # a temporary table typed as the mapping types the source
SOURCE_VIEW = (
    "SELECT now()::text, pg_current_snapshot()::text, (CASE WHEN pg_is_in_recovery()"
    " THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text"
)


@dataclass(frozen=True)
class Mapped:
    """The source as the mapping makes it: each target column with the
    source's expression for it, its type and how it is hashed; the key."""

    plan: tuple[Column, ...]
    defs: tuple[tuple[str, str], ...]  # the source's columns and types
    types: tuple[str, ...]
    native: tuple[bool, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.target for c in self.plan)

    def type_of(self, name: str) -> str:
        return self.types[self.names.index(name)]


async def mapped(ctx: PhaseContext) -> Mapped:
    spec = ctx.spec
    defs = await ctx.source.autocommit(lambda c: catalog.column_defs(c, spec.source_table))
    try:
        plan = ctx.mapping.plan([n for n, _ in defs])
        source_key = parse_source_key(spec.source_key)
    except DomainSpecError as exc:
        raise SpecError(str(exc)) from None
    key = staged.key_columns(plan, source_key)

    async def typed(conn: Conn) -> tuple[list[tuple[str, str]], list[bool]]:
        await shaped(conn, defs, plan, SHAPED)
        name = f"pg_temp.{SHAPED}"
        return await catalog.column_defs(conn, name), await checksums.natively_hashed(
            conn, catalog.regname(name)
        )

    types, native = await ctx.target.transaction(typed)
    return Mapped(plan, tuple(defs), tuple(t for _, t in types), tuple(native), key)


async def shaped(
    conn: Conn, defs: Sequence[tuple[str, str]], plan: Sequence[Column], name: str
) -> None:
    """An empty temporary table `name` (gone at commit) in the mapping's shape."""
    await conn.execute(create_shape(defs))
    await conn.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            sql.Identifier(name), select_list(plan), SHAPE
        )
    )


def source_values(shape: Mapped) -> dict[str, sql.Composable]:
    """Per target column, the source's expression for it, typed as staged."""
    return {
        c.target: sql.SQL("({})::{}").format(expression(c), sql.SQL(t))
        for c, t in zip(shape.plan, shape.types, strict=True)
    }


def target_values(shape: Mapped) -> dict[str, sql.Composable]:
    """Per target column, its value (alias `s`), typed as staged."""
    return {
        n: sql.SQL("s.{}::{}").format(sql.Identifier(n), sql.SQL(t))
        for n, t in zip(shape.names, shape.types, strict=True)
    }


def source_side(conn: Conn, ctx: PhaseContext, shape: Mapped) -> Side:
    return _side(conn, ctx.spec.source_table, source_values(shape), shape)


def target_side(conn: Conn, ctx: PhaseContext, shape: Mapped) -> Side:
    return _side(conn, ctx.spec.target_table, target_values(shape), shape)


def _side(conn: Conn, name: str, values: dict[str, sql.Composable], shape: Mapped) -> Side:
    return Side(
        conn, table(name), tuple(values.values()), shape.native, tuple(values[k] for k in shape.key)
    )


async def whole(ctx: PhaseContext) -> bool:
    """Whether the target holds only the migration's rows (see above)."""
    found = await ctx.target.autocommit(lambda c: checkpoints.load(c, ctx.migration_id, "load"))
    return bool(found) and str((found[0].result or {}).get("how")) in WHOLE


async def pinned(conn: Conn) -> None:
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    await conn.execute(STABLE_TEXT)


async def compare(ctx: PhaseContext, shape: Mapped) -> tuple[Found, SnapshotRef, str]:
    """Bisect source and target, each in one snapshot: what differs, the
    source's snapshot, and when (the target's clock)."""
    async with ctx.source.connection() as src, src.transaction():
        await pinned(src)
        row = await (await src.execute(SOURCE_VIEW)).fetchone()
        assert row is not None
        snapshot = SnapshotRef(id=str(row[1]), taken_at=str(row[0]), lsn=str(row[2]))
        async with ctx.target.connection() as tgt, tgt.transaction():
            await pinned(tgt)
            first = shape.key[0]
            order = Order(shape.type_of(first), await chunks.orderable(tgt, shape.type_of(first)))
            found = await Bisection(
                source_side(src, ctx, shape), target_side(tgt, ctx, shape), order
            ).run()
            at = await (await tgt.execute("SELECT now()::text")).fetchone()
    return found, snapshot, str(at[0]) if at else ""


def figures(found: Found, whole: bool) -> dict[str, Any]:
    """A diff's figures, as DiffTaken and DiffRecorded carry them."""
    counts = found.counts()
    differing = counts["missing"] + counts["different"] + (counts["extra"] if whole else 0)
    return {
        **counts,
        "differing": differing,
        "source_rows": found.source.rows,
        "target_rows": found.target.rows,
        "samples": found.samples(),
        "ranges": tuple(found.ranges),
        "ranges_compared": found.ranges_compared,
    }


async def take(ctx: PhaseContext) -> DiffTaken:
    """Diff the migration now, save the report and send it; the result sent."""
    started = time.monotonic()
    await ctx.target.autocommit(diff_store.prepare)
    shape = await mapped(ctx)
    only_ours = await whole(ctx)
    async with ctx.limiter.slot():
        found, snapshot, at = await compare(ctx, shape)
    task = ctx.task
    result = DiffTaken(
        result_id=f"{task.task_id}:diff",
        migration_id=task.migration_id,
        phase=task.phase,
        run=task.run,
        **figures(found, only_ours),
        snapshot=snapshot,
        taken_at=at,
        seconds=round(time.monotonic() - started, 3),
    )
    report = report_of(result, shape, only_ours)

    async def save(conn: Conn) -> None:
        await diff_store.save(conn, task.migration_id, result.result_id, task.phase, report, found)

    await ctx.target.transaction(save)
    await ctx.answer(result)
    return result


def report_of(result: DiffTaken, shape: Mapped, only_ours: bool) -> dict[str, Any]:
    return {**to_plain(result), "key": list(shape.key), "extra_repaired": only_ours}


async def run(ctx: PhaseContext) -> Outcome:
    result = await take(ctx)
    return Finished(result.target_rows)

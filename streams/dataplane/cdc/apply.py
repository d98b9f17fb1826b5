"""Source changes onto the target table, through the spec's mapping, in
commit order, in the caller's target transaction (which also stores the
position: positions.save).

The mapping a change can go through is one of renames and drops: each
target column is one source column as it is (`Routes.of` refuses any other,
naming the columns). An INSERT inserts; an UPDATE sets the columns it
carries (one it leaves out kept its TOASTed value on the source, so the
target keeps its own) on the row of its old key; a DELETE deletes that row;
a TRUNCATE empties the table. An UPDATE or DELETE that finds no row, or an
INSERT whose key is there, fails: the target and the source's history
disagree, and nothing is applied over that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from domain.errors import SpecError as DomainSpecError
from domain.spec import ColumnMapping, parse_source_key
from streams.dataplane.cdc.changes import DELETE, INSERT, TRUNCATE, UPDATE, Change
from streams.dataplane.cdc.positions import touched, truncated
from streams.dataplane.database import Conn
from streams.dataplane.errors import CaptureRefused, PhaseError
from streams.dataplane.sql import table as identifier


@dataclass(frozen=True)
class Routes:
    """Where each source column goes in the target (`columns`: source name ->
    target name; a dropped column is not there) and the key, as source and
    as target columns."""

    target: str
    columns: dict[str, str]
    key: tuple[str, ...]

    @classmethod
    def of(
        cls, mapping: ColumnMapping, source_key: str, columns: Sequence[str], target: str
    ) -> Routes:
        """The routes of a spec; CaptureRefused when its mapping computes a
        column (changes carry single values, not the copy's SELECT)."""
        try:
            plan = mapping.plan(columns)
            key = parse_source_key(source_key)
        except DomainSpecError as exc:
            raise CaptureRefused(f"change capture: {exc}") from None
        computed = [c.target for c in plan if not c.is_plain]
        if computed:
            raise CaptureRefused(
                "change capture applies renames and drops only; the mapping computes"
                f" {', '.join(computed)} (use a plain mapping, or no cdc)"
            )
        routes = {c.sources[0]: c.target for c in plan}
        dropped = [k for k in key if k not in routes]
        if dropped:
            raise CaptureRefused(f"the mapping drops the source key column {dropped[0]}")
        return cls(target, routes, key)

    @property
    def target_key(self) -> tuple[str, ...]:
        return tuple(self.columns[k] for k in self.key)

    def key_of(self, values: dict[str, str | None]) -> str:
        """A key's values as the JSON text cdc_keys holds."""
        return json.dumps([values.get(k) for k in self.key])


async def apply(conn: Conn, routes: Routes, migration_id: str, changes: Sequence[Change]) -> int:
    """Apply `changes` in order; the number applied."""
    keys: set[str] = set()
    for change in changes:
        await _apply(conn, routes, change)
        if change.kind == TRUNCATE:
            await truncated(conn, migration_id)
        for values in (change.old(), change.values()):
            if values and all(k in values for k in routes.key):
                keys.add(routes.key_of(values))
    await touched(conn, migration_id, keys)
    return len(changes)


async def _apply(conn: Conn, routes: Routes, change: Change) -> None:
    table = identifier(routes.target)
    if change.kind == TRUNCATE:
        await conn.execute(sql.SQL("DELETE FROM {}").format(table))
        return
    if change.kind == INSERT:
        values = _routed(routes, change.values())
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table,
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )
        await conn.execute(query, list(values.values()))
        return
    old = change.old() or change.values()
    where, params = _where(routes, old)
    if change.kind == UPDATE:
        values = _routed(routes, change.values())
        query = sql.SQL("UPDATE {} SET {} WHERE {}").format(
            table,
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder()) for n in values
            ),
            where,
        )
        done = await conn.execute(query, [*values.values(), *params])
    elif change.kind == DELETE:
        done = await conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(table, where), params)
    else:
        raise PhaseError(f"change capture: unknown change kind {change.kind!r}")
    if done.rowcount != 1:
        raise PhaseError(
            f"change capture: {change.kind} of key {routes.key_of(old)} in {change.table}"
            f" found {done.rowcount} rows in the target {routes.target}, not 1"
        )


def _routed(routes: Routes, values: dict[str, str | None]) -> dict[str, str | None]:
    return {routes.columns[n]: v for n, v in values.items() if n in routes.columns}


def _where(routes: Routes, old: dict[str, str | None]) -> tuple[sql.Composed, list[str | None]]:
    missing = [k for k in routes.key if k not in old]
    if missing:
        raise PhaseError(f"change capture: a change without its key column {missing[0]}")
    where = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in routes.target_key
    )
    return where, [old[k] for k in routes.key]

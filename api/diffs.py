"""A migration's diff report: its latest row-level diff of source and
target (the DiffRecorded event, as the read model keeps it), as JSON a person
can sign off on, with what was compared, in which snapshot and when; the
page `/dashboard/diff` shows the same report."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import Role, requires
from api.keys import POOL
from api.responses import ok, problem
from projections import queries

FIGURES = (
    "phase",
    "missing",
    "extra",
    "different",
    "differing",
    "source_rows",
    "target_rows",
    "samples",
    "ranges",
    "ranges_compared",
    "snapshot",
    "taken_at",
    "seconds",
)


def report(migration: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The report of one diff: the migration, what differs, what was compared."""
    payload, spec = event["payload"], migration["spec"] or {}
    return {
        "migration_id": migration["migration_id"],
        "status": migration["status"],
        "source": {"connection": spec.get("source_connection"), "table": spec.get("source_table")},
        "target": {"connection": spec.get("target_connection"), "table": spec.get("target_table")},
        "key": spec.get("source_key"),
        "sequence": event["sequence"],
        "recorded_at": event["occurred_at"],
        "clean": payload.get("differing", 0) == 0 and _found(payload) == 0,
        **{name: payload.get(name) for name in FIGURES},
    }


def _found(payload: dict[str, Any]) -> int:
    return int(payload.get("missing", 0)) + int(payload.get("different", 0))


@requires(Role.VIEWER)
async def get_diff(request: web.Request) -> web.StreamResponse:
    migration_id = request.match_info["migration_id"]
    pool = request.app[POOL]
    migration = await queries.get_migration(pool, migration_id)
    if migration is None:
        return problem(404, f"no migration {migration_id!r}")
    event = await queries.latest_diff(pool, migration_id)
    if event is None:
        return problem(404, f"no diff of migration {migration_id!r} yet: ask for one (POST …/diff)")
    return ok(report(migration, event))

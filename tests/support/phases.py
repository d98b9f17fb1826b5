"""Phases run directly against real PostgreSQL databases (no Kafka): the named
connections `legacy` (source) and `warehouse` (target), and one phase of one
migration run to its outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from config import Settings
from domain import MigrationSpec, RunPhase
from domain.spec import parse_spec_parts
from streams.dataplane import runner
from streams.dataplane.context import Limiter, Outcome, PhaseContext, Progress
from streams.dataplane.database import Databases
from tests.support.tables import connection_for


@asynccontextmanager
async def legacy_and_warehouse(
    source_url: str, target_url: str, **phase: Any
) -> AsyncIterator[Databases]:
    """The two named databases, with few retries (a failure shows at once)
    unless `phase` (settings of the phase group) says otherwise."""
    connections = {"legacy": connection_for(source_url), "warehouse": connection_for(target_url)}
    found = Databases(Settings(phase={"connections": connections, "retry_attempts": 2, **phase}))
    try:
        yield found
    finally:
        await found.close()


async def run_phase(
    dbs: Databases, spec: MigrationSpec, phase: str, run: int = 1, migration_id: str = "m-1"
) -> Outcome:
    return await runner.run(await phase_context(dbs, spec, phase, run, migration_id))


async def phase_context(
    dbs: Databases,
    spec: MigrationSpec,
    phase: str,
    run: int = 1,
    migration_id: str = "m-1",
    report: Callable[[Progress], None] = lambda _: None,
) -> PhaseContext:
    """One run of `phase`; its `stop` is the run's stop signal; `report` hears
    its progress after each batch."""
    mapping, rules = parse_spec_parts(spec.mapping, spec.rules)
    task = RunPhase(
        task_id=f"task-{migration_id}-{phase}-{run}",
        migration_id=migration_id,
        phase=phase,
        run=run,
        spec=spec,
    )
    return PhaseContext(
        task,
        await dbs.get(spec.source_connection),
        await dbs.get(spec.target_connection),
        mapping,
        rules,
        Limiter(4),
        "test-worker",
        report=report,
    )

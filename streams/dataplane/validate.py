"""validate: score the transformed rows against the spec's rules.

Each rule is one query (rows breaking it, and sample keys) committed into the
checkpoint, so a paused or interrupted validation resumes at the next rule.
A rule's score is the share of rows that keep it; the overall score is the
share of rows that keep every rule. Below the spec's minimum the phase fails
with a report of the failing rules and sample keys (and a retry scores again).

Each of these statements may run PHASE_VALIDATION_TIMEOUT_SECONDS (set for
its transaction only); one that runs longer fails the phase at once, naming
the rule, and is not retried: it would run as long again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from domain.spec import Rule
from streams.dataplane import catalog, checkpoints, metrics
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext, Stopped
from streams.dataplane.database import Conn
from streams.dataplane.errors import StatementCancelled, ValidationFailed
from streams.dataplane.sql import failing_any, rule_check, staging, staging_name

PHASE = "validate"


def score_of(failed: int, total: int) -> float:
    return 1.0 if total == 0 else 1.0 - failed / total


def report(results: dict[str, Any], score: float, minimum: float) -> str:
    failing = [
        f"{name}: {r['failed']} of {r['total']} rows fail (score {r['score']:.4f};"
        f" e.g. keys {', '.join(r['samples'])})"
        for name, r in results.items()
        if r["failed"]
    ]
    return f"validation score {score:.4f} is below the minimum {minimum}: " + "; ".join(failing)


async def run(ctx: PhaseContext) -> Outcome:
    mid = ctx.migration_id
    rows, name = staging(mid, "rows"), staging_name(mid, "rows")
    key = await ctx.target.autocommit(lambda c: catalog.primary_key(c, name))

    async def setup(conn: Conn) -> Checkpoint:
        cp = await checkpoints.lock_slice(conn, mid, PHASE, 0)
        if cp is None:
            cp = Checkpoint(
                mid, PHASE, 0, {"rules": {}}, rows_total=await catalog.count(conn, name)
            )
            await checkpoints.create(conn, cp)
        return cp

    cp = await ctx.target.transaction(setup)
    for rule in ctx.rules:
        if rule.name in cp.position["rules"]:
            continue
        if ctx.stop.is_set():
            return Stopped(cp.text())
        async with ctx.limiter.slot(), _timing(ctx, f"rule {rule.name!r}"):
            cp = await ctx.target.transaction(partial(_check, ctx, rule=rule, rows=rows, key=key))
        ctx.progress([cp])
    async with _timing(ctx, "the score"):
        outcome = await ctx.target.transaction(lambda conn: _score(ctx, conn, cp))
    if isinstance(outcome, str):
        # Forget the rule results: a retry (say, after the reference data
        # was fixed) scores again.
        await ctx.target.transaction(lambda conn: checkpoints.forget(conn, mid, PHASE))
        raise ValidationFailed(outcome)
    return outcome


@asynccontextmanager
async def _timing(ctx: PhaseContext, what: str) -> AsyncIterator[None]:
    """A statement of `what` cancelled on the server fails the phase naming it."""
    try:
        yield
    except StatementCancelled as exc:
        seconds = ctx.target.settings.phase.validation_timeout_seconds
        raise StatementCancelled(
            f"validation of {what} was cancelled ({exc}); a validation statement may run"
            f" PHASE_VALIDATION_TIMEOUT_SECONDS ({seconds:g} s)"
        ) from exc


async def limit_time(ctx: PhaseContext, conn: Conn) -> None:
    """This transaction's statements may run PHASE_VALIDATION_TIMEOUT_SECONDS."""
    ms = int(ctx.target.settings.phase.validation_timeout_seconds * 1000)
    await conn.execute(f"SET LOCAL statement_timeout = {ms}")


async def _check(ctx: PhaseContext, conn: Conn, rule: Rule, rows: Any, key: str) -> Checkpoint:
    await limit_time(ctx, conn)
    cp = await checkpoints.lock_slice(conn, ctx.migration_id, PHASE, 0)
    assert cp is not None
    if rule.name in cp.position["rules"]:
        return cp
    row = await (await conn.execute(rule_check(rule, rows, key))).fetchone()
    failed, samples = (int(row[0]), list(row[1] or [])) if row else (0, [])
    result = {
        "failed": failed,
        "total": cp.rows_total,
        "samples": samples,
        "score": score_of(failed, cp.rows_total),
    }
    done = len(cp.position["rules"]) + 1
    rows_done = cp.rows_total * done // max(1, len(ctx.rules)) - cp.rows_done
    await checkpoints.advance(
        conn, cp, rows_done, ctx.worker_id, rules={**cp.position["rules"], rule.name: result}
    )
    return cp


async def _score(ctx: PhaseContext, conn: Conn, cp: Checkpoint) -> Finished | str:
    """The phase's result, or the report of why it fails."""
    rows = staging(ctx.migration_id, "rows")
    await limit_time(ctx, conn)
    row = await (await conn.execute(failing_any(ctx.rules, rows))).fetchone()
    failed, total = (int(row[0]), int(row[1])) if row else (0, 0)
    score = score_of(failed, total)
    results = cp.position["rules"]
    metrics.SCORE.observe(score)
    if score < ctx.spec.min_score:
        return report(results, score, ctx.spec.min_score)
    locked = await checkpoints.lock_slice(conn, ctx.migration_id, PHASE, 0)
    assert locked is not None
    await checkpoints.finish(conn, locked, {"rows": total, "score": score, "rules": results})
    return Finished(total, score)

"""validate: score the staged rows against the spec's rules, all of them in
one scan of the rows (a rule that is not row-local, unique or foreign_key,
is a subquery of that scan).

A rule's score is the share of rows that keep it; the overall score is the
share of rows that keep every rule. Below the spec's minimum the phase fails
with a report of the failing rules and sample keys (a composite key's as a
row, `(1,7)`; and a retry scores again). Without rules nothing is read: the score is 1.

The scan may run PHASE_VALIDATION_TIMEOUT_SECONDS (set for its transaction
only); one that runs longer fails the phase at once and is not retried: it
would run as long again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from streams.dataplane import checkpoints, metrics, staged
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import StatementCancelled, ValidationFailed
from streams.dataplane.sql import rules_scan, staging

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
    found = await ctx.target.autocommit(lambda c: staged.read(c, mid))
    if not ctx.rules:
        return Finished(found.rows, 1.0)
    async with ctx.limiter.slot(), _timing(ctx, "the rules"):
        outcome = await ctx.target.transaction(lambda conn: _scan(ctx, conn, found.key))
    if isinstance(outcome, str):
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


async def _scan(ctx: PhaseContext, conn: Conn, key: Sequence[str]) -> Finished | str:
    """The phase's result, or the report of why it fails."""
    await limit_time(ctx, conn)
    rows = staging(ctx.migration_id, "rows")
    row = await (await conn.execute(rules_scan(ctx.rules, rows, key))).fetchone()
    assert row is not None
    total, failed = int(row[0]), int(row[1])
    results = {
        rule.name: {
            "failed": int(row[2 + 2 * i]),
            "total": total,
            "samples": list(row[3 + 2 * i] or []),
            "score": score_of(int(row[2 + 2 * i]), total),
        }
        for i, rule in enumerate(ctx.rules)
    }
    score = score_of(failed, total)
    metrics.SCORE.observe(score)
    if score < ctx.spec.min_score:
        return report(results, score, ctx.spec.min_score)
    cp = Checkpoint(ctx.migration_id, PHASE, 0, {"rules": results}, rows_total=total)
    await checkpoints.create(conn, cp)
    locked = await checkpoints.lock_slice(conn, ctx.migration_id, PHASE, 0)
    assert locked is not None
    await checkpoints.finish(conn, locked, {"rows": total, "score": score, "rules": results})
    return Finished(total, score)

"""The `cutover` phase: the switch from a live source to its target.

1. With `freeze`, writes to the source table are refused from here on
   (freeze.py: a statement trigger) and the WAL position then is the freeze
   point.
2. Changes are applied until the lag is at most `max_lag_bytes` and
   `max_lag_seconds` (and, frozen, up to the freeze point: then nothing is
   left).
3. Every row whose key changed since the snapshot is compared, source
   against target; a difference is applied again (the source moves on when
   not frozen) and checked once more, up to VERIFY_ROUNDS times, then fails
   the phase (CutoverMismatch) naming a few keys.
4. The sequences the source table's columns own are set on the target's.
5. The slot is dropped, and the phase finishes with a CutoverResult (the
   position, counts and checksums of both tables).

Stopped before the switch (an abort, a cancel, a newer task), it unfreezes
the source and leaves the slot: the migration can go back to sync. Options
come from the task: `max_lag_bytes` (default 0), `max_lag_seconds` (0),
`freeze` (false), read by `CutoverOptions.of`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from domain import RunPhase
from streams.dataplane.cdc import freeze, positions, verify
from streams.dataplane.cdc.capture import Capture, Stepped, progress
from streams.dataplane.cdc.slots import lsn_number
from streams.dataplane.cdc.sync import IDLE_SECONDS, wait
from streams.dataplane.context import CutoverResult, Finished, Outcome, PhaseContext, Stopped
from streams.dataplane.errors import CutoverMismatch, SpecError

log = logging.getLogger(__name__)
VERIFY_ROUNDS = 3
SHOWN_KEYS = 5


@dataclass(frozen=True)
class CutoverOptions:
    max_lag_bytes: int = 0
    max_lag_seconds: float = 0.0
    freeze: bool = False

    @classmethod
    def of(cls, task: RunPhase) -> CutoverOptions:
        """The task's options: its `cutover` field (domain.CutoverOptions, a
        None bound read as 0) when it has one, else a JSON object in its
        `checkpoint`; none given: the defaults."""
        found: Any = asdict(task.cutover) if task.cutover is not None else None
        if not found and task.checkpoint and task.checkpoint.lstrip().startswith("{"):
            found = json.loads(task.checkpoint)
        found = dict(found or {})
        try:
            return cls(
                max_lag_bytes=int(found.get("max_lag_bytes") or 0),
                max_lag_seconds=float(found.get("max_lag_seconds") or 0),
                freeze=bool(found.get("freeze", False)),
            )
        except (TypeError, ValueError) as exc:
            raise SpecError(f"cutover options {found!r}: {exc}") from None

    def reached(self, stepped: Stepped) -> bool:
        return (
            stepped.lag_bytes <= self.max_lag_bytes and stepped.lag_seconds <= self.max_lag_seconds
        )


async def run(ctx: PhaseContext) -> Outcome:
    options = CutoverOptions.of(ctx.task)
    capture = await Capture.open(ctx)
    table, switched = ctx.spec.source_table, False
    frozen_at: str | None = None
    try:
        if options.freeze:
            frozen_at = await ctx.source.autocommit(
                lambda c: freeze.freeze(c, table, ctx.migration_id)
            )
            log.info("%s cutover: %s frozen at %s", ctx.migration_id, table, frozen_at)
        stepped = await _catch_up(ctx, capture, options, frozen_at)
        if stepped is None:
            return Stopped(None)
        verified = await _verify(ctx, capture)
        if verified is None:
            return Stopped(None)
        result = await _result(ctx, capture, verified, frozen_at is not None)
        await capture.drop_slot()
        switched = True
        return Finished(result.changes_applied, cutover=result)
    finally:
        if frozen_at is not None and not switched:
            await ctx.source.autocommit(lambda c: freeze.unfreeze(c, table))
            log.info("%s cutover stopped before its switch: %s unfrozen", ctx.migration_id, table)


async def _catch_up(
    ctx: PhaseContext, capture: Capture, options: CutoverOptions, frozen_at: str | None
) -> Stepped | None:
    """Apply until the lag is within the options (and past the freeze point)."""
    while not ctx.stop.is_set():
        stepped = await capture.step()
        ctx.report(progress(stepped))
        past = frozen_at is None or lsn_number(stepped.position.lsn) >= lsn_number(frozen_at)
        if past and options.reached(stepped) and not (frozen_at and stepped.more):
            return stepped
        if not stepped.more:
            await wait(ctx.stop, IDLE_SECONDS)
    return None


async def _verify(ctx: PhaseContext, capture: Capture) -> int | None:
    """Compare every row changed since the snapshot; the number compared."""
    stored = await capture.position()
    routes, table = capture.routes, capture.table
    if stored.truncated:
        keys = await ctx.source.autocommit(lambda c: verify.all_keys(c, table, routes.key))
        keys += await ctx.target.autocommit(
            lambda c: verify.all_keys(c, routes.target, routes.target_key)
        )
    else:
        keys = await ctx.target.autocommit(lambda c: positions.keys(c, ctx.migration_id))
    checked = len(keys)
    for _ in range(VERIFY_ROUNDS):
        keys = await verify.differing(ctx.source, ctx.target, routes, capture.shape, table, keys)
        if not keys or ctx.stop.is_set():
            return None if ctx.stop.is_set() else checked
        await capture.step()  # the source moved on since: apply it, then look again
    shown = ", ".join(json.dumps(k) for k in keys[:SHOWN_KEYS])
    raise CutoverMismatch(
        f"{len(keys)} rows changed since the snapshot differ between {table} and"
        f" {routes.target} after {VERIFY_ROUNDS} rounds, e.g. keys {shown}"
    )


async def _result(
    ctx: PhaseContext, capture: Capture, verified: int, frozen: bool
) -> CutoverResult:
    routes = capture.routes
    names = [n for n, _ in capture.shape.columns if n in routes.columns]
    sequences = await verify.set_sequences(ctx.source, ctx.target, routes, capture.table)
    theirs = await ctx.source.autocommit(lambda c: verify.figures(c, capture.table, names))
    ours = await ctx.target.autocommit(
        lambda c: verify.figures(c, routes.target, [routes.columns[n] for n in names])
    )
    stored = await capture.position()
    return CutoverResult(
        position=stored.lsn,
        source_rows=theirs[0],
        target_rows=ours[0],
        source_checksum=theirs[1],
        target_checksum=ours[1],
        changes_applied=stored.changes,
        keys_verified=verified,
        frozen=frozen,
        sequences=sequences,
    )

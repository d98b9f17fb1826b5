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
   Frozen, a target that holds only the migration's rows must then equal
   the source, count and checksum, or the phase fails (CutoverMismatch)
   without switching: a row changed behind the capture's back is not among
   the keys step 3 compares.
5. The result is stored in the target (a repeated task answers with it),
   the slot is dropped, and the phase finishes with a CutoverResult (the
   position, counts and checksums of both tables).

Stopped before the switch (an abort, a cancel, a newer task), it unfreezes
the source and leaves the slot: the migration can go back to sync; once asked to
stop it never switches. Options come from the task (`RunPhase.cutover`, a
domain.CutoverOptions): `max_lag_bytes`, `max_lag_seconds` (None: not a
bound) and `freeze`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

from domain import CutoverOptions, CutoverResult
from streams.dataplane import diff
from streams.dataplane.cdc import freeze, positions, verify
from streams.dataplane.cdc.capture import Capture, Stepped, progress
from streams.dataplane.cdc.slots import lsn_number
from streams.dataplane.cdc.sync import IDLE_SECONDS, wait
from streams.dataplane.context import Finished, Outcome, PhaseContext, Stopped
from streams.dataplane.errors import CutoverMismatch

log = logging.getLogger(__name__)
VERIFY_ROUNDS = 3
SHOWN_KEYS = 5


def reached(options: CutoverOptions, stepped: Stepped) -> bool:
    """Whether the lag is within the options' bounds (None: not a bound)."""
    bytes_ok = options.max_lag_bytes is None or stepped.lag_bytes <= options.max_lag_bytes
    seconds = options.max_lag_seconds
    return bytes_ok and (seconds is None or stepped.lag_seconds <= seconds)


async def run(ctx: PhaseContext) -> Outcome:
    options = ctx.task.cutover or CutoverOptions()
    capture = await Capture.open(ctx)
    done = await ctx.target.autocommit(lambda c: positions.cutover_of(c, ctx.migration_id))
    if done is not None:  # switched already: a repeated task gets the same answer
        await capture.drop_slot()
        result = CutoverResult(**done)
        return Finished(result.changes_applied, cutover=result)
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
        if frozen_at is not None and await diff.whole(ctx):
            _same_or_fail(result, table, capture.routes.target)
        if ctx.stop.is_set():  # asked to stop: no switch after that
            return Stopped(None)
        stored = asdict(result)
        await ctx.target.autocommit(lambda c: positions.switched(c, ctx.migration_id, stored))
        switched = True
        await capture.drop_slot()
        return Finished(result.changes_applied, cutover=result)
    finally:
        if frozen_at is not None and not switched:
            await ctx.source.autocommit(lambda c: freeze.unfreeze(c, table))
            log.info("%s cutover stopped before its switch: %s unfrozen", ctx.migration_id, table)


def _same_or_fail(result: CutoverResult, table: str, target: str) -> None:
    """Frozen and caught up, a target that holds only the migration's rows
    equals the source: different figures mean a row changed behind the
    capture (or a change it missed), which the verification of changed keys
    cannot see. No switch then."""
    source = (result.source_rows, result.source_checksum)
    if source != (result.target_rows, result.target_checksum):
        raise CutoverMismatch(
            f"{table} and {target} differ though the source is frozen and every change"
            f" is applied: {result.source_rows} rows (checksum {result.source_checksum})"
            f" against {result.target_rows} (checksum {result.target_checksum});"
            " a diff (migrator diff <id> --take) names the keys"
        )


async def _catch_up(
    ctx: PhaseContext, capture: Capture, options: CutoverOptions, frozen_at: str | None
) -> Stepped | None:
    """Apply until the lag is within the options (and past the freeze point)."""
    while not ctx.stop.is_set():
        stepped = await capture.step()
        ctx.report(progress(stepped))
        past = frozen_at is None or lsn_number(stepped.position.lsn) >= lsn_number(frozen_at)
        if past and reached(options, stepped) and not (frozen_at and stepped.more):
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
    for name, theirs_seq, value in sequences:
        log.info("%s cutover: %s set to %d as %s is", ctx.migration_id, theirs_seq, value, name)
    return CutoverResult(
        position=stored.lsn,
        source_rows=theirs[0],
        target_rows=ours[0],
        source_checksum=theirs[1],
        target_checksum=ours[1],
        changes_applied=stored.changes,
        rows_verified=verified,
        sequences_synced=len(sequences),
        frozen=frozen,
    )

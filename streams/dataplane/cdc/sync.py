"""The `sync` phase: change capture after the copy, until it is stopped
(a pause, a cancel, a newer task of the migration such as a cutover). It
applies what the slot holds step by step (capture.py) and reports progress
with the lag; caught up, it looks at the source's catalog for a DDL no
change has shown yet, then waits a little. It never finishes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib

from streams.dataplane.cdc import freeze
from streams.dataplane.cdc.capture import Capture, Stepped, progress
from streams.dataplane.context import Outcome, PhaseContext, Stopped

IDLE_SECONDS = 0.5  # the wait between looks at a slot that held nothing new
REPORT_SECONDS = 1.0  # progress at most this often (and whenever something was applied)


async def run(ctx: PhaseContext) -> Outcome:
    capture = await Capture.open(ctx)
    await ctx.source.autocommit(lambda c: freeze.unfreeze(c, ctx.spec.source_table))
    last: Stepped | None = None
    reported = 0.0
    loop = asyncio.get_running_loop()
    while not ctx.stop.is_set():
        last = await capture.step()
        if last.applied or loop.time() - reported >= REPORT_SECONDS:
            ctx.report(progress(last))
            reported = loop.time()
        if not last.more:
            if not last.applied:
                await capture.check_catalog()
            await wait(ctx.stop, IDLE_SECONDS)
    return Stopped(last.position.text() if last else None)


async def wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

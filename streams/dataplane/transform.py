"""transform: the declarative column mapping. It runs inside extract's
`COPY (SELECT <mapping> ...)` (one pass: rows land once, in the target's
shape), so this phase only records that, with extract's row count."""

from __future__ import annotations

from streams.dataplane import checkpoints, staged
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import Finished, Outcome, PhaseContext
from streams.dataplane.database import Conn

PHASE = "transform"


async def run(ctx: PhaseContext) -> Outcome:
    mid = ctx.migration_id

    async def record(conn: Conn) -> int:
        rows = (await staged.read(conn, mid)).rows
        cp = Checkpoint(mid, PHASE, 0, {"applied": "in extract"}, rows_total=rows)
        await checkpoints.create(conn, cp)
        locked = await checkpoints.lock_slice(conn, mid, PHASE, 0)
        assert locked is not None
        await checkpoints.finish(conn, locked, {"rows": rows, "applied": "in extract"})
        return rows

    return Finished(await ctx.target.transaction(record))

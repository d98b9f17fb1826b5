"""The log of chunk attempts (`migrator_state.chunk_runs`), written on a
connection of the run's own, outside the pool.

An attempt is logged, and committed, as a chunk starts, while the chunk's
transaction holds a pooled connection of the same database: taking a second
pooled connection there would let chunks in flight hold every connection
while each waits for one more. So a run logs its attempts on one connection
it opens for them (one at a time), and closes it when it ends.
"""

from __future__ import annotations

import asyncio

import psycopg

from streams.dataplane import checkpoints
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.database import Conn, Database


async def _opened(conn: Conn) -> None:
    """Nothing to set up: the connection is in autocommit."""


class Attempts:
    def __init__(self, target: Database, worker: str) -> None:
        self.target, self.worker = target, worker
        self.conn: Conn | None = None
        self.lock = asyncio.Lock()

    async def log(self, cp: Checkpoint) -> None:
        """Log (and commit) an attempt at chunk `cp`; a lost connection is
        opened again once (retried as a transaction is)."""
        async with self.lock:
            for last in (False, True):
                if self.conn is None or self.conn.closed:
                    self.conn, _ = await self.target.dedicated(_opened)
                try:
                    await checkpoints.log_attempt(self.conn, cp, self.worker)
                    return
                except psycopg.OperationalError:
                    await self.close()
                    if last:
                        raise

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.closed:
            await conn.close()

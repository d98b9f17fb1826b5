"""Fault injection at the points that matter for exactly-once, for the chaos
tests (the way Kafka's own system tests bounce clients mid-transaction).

`FAULT_WORKER=<action>_after_<point>`, e.g. `kill_after_produce`: the worker hits
itself once, on its FAULT_WORKER_BATCH-th transaction (default 3). Actions: `kill`
(SIGKILL) and `stop` (SIGSTOP: a stall, a zombie once its partitions move).
Points: `produce` (outputs written, offsets not sent), `offsets` (offsets
sent, not committed), `commit` (committed). Unset in production.
"""

from __future__ import annotations

import os
import signal

ACTIONS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}
POINTS = ("produce", "offsets", "commit")


class Faults:
    def __init__(self, spec: str, batch: int = 3) -> None:
        self.action, self.point = _parse(spec)
        self.batch, self.seen = batch, 0

    def at(self, point: str) -> None:
        """Call at each point; fires once, at the configured point and batch."""
        if self.action is None or point != self.point:
            return
        self.seen += 1
        if self.seen == self.batch:
            os.kill(os.getpid(), ACTIONS[self.action])


def _parse(spec: str) -> tuple[str | None, str | None]:
    if not spec:
        return None, None
    action, _, point = spec.partition("_after_")
    if action not in ACTIONS or point not in POINTS:
        raise ValueError(f"FAULT_WORKER must be <{'|'.join(ACTIONS)}>_after_<{'|'.join(POINTS)}>")
    return action, point

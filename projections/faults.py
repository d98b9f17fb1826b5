"""Fault injection for the projector's restart tests: `FAULT_PROJECTOR=kill_before_commit`
SIGKILLs the process inside its FAULT_PROJECTOR_BATCH-th batch, after the rows
are written and before the transaction commits. Unset in production."""

from __future__ import annotations

import os
import signal


class Faults:
    def __init__(self, fault: str, batch: int) -> None:
        self.fault, self.batch, self.seen = fault, batch, 0

    def before_commit(self) -> None:
        if self.fault != "kill_before_commit":
            return
        self.seen += 1
        if self.seen == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)

"""A redrive that SIGKILLs itself at a point of its N-th transaction, for the
exactly-once test: `python -m tests.support.redrive_killed DLQ POINT N`
(settings from the environment; batches of 2 records)."""

from __future__ import annotations

import os
import signal
import sys

from config import load_settings
from ops.dead_letters import Redrive, Selection


def main(dlq: str, point: str, batch: int) -> None:
    def checkpoint(at: str, number: int) -> None:
        if (at, number) == (point, batch):
            os.kill(os.getpid(), signal.SIGKILL)

    Redrive(load_settings(), dlq, batch=2, checkpoint=checkpoint).run(Selection(everything=True), 5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

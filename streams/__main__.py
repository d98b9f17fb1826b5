"""`python -m streams worker`: one worker process of the orchestrator group."""

from __future__ import annotations

import signal
import sys
import threading

# Installed before the heavy imports: a SIGTERM during start-up is a clean stop.
STOP = threading.Event()
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda *_: STOP.set())


def main(argv: list[str]) -> int:
    if argv[:1] != ["worker"]:
        print("usage: python -m streams worker", file=sys.stderr)
        return 2
    from streams.worker import run_worker

    run_worker(STOP)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

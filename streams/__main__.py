"""`python -m streams worker` (or `python -m streams.orchestrator`): one worker process
of the orchestrator group.
`python -m streams phase-worker` (or `python -m streams.dataplane`): one phase worker
(the data plane)."""

from __future__ import annotations

import signal
import sys
import threading

# Installed before the heavy imports: a SIGTERM during start-up is a clean stop.
STOP = threading.Event()
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda *_: STOP.set())


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        from streams.orchestrator.worker import run_worker

        run_worker(STOP)
        return 0
    if argv[:1] == ["phase-worker"]:
        from streams.dataplane.worker import run_phase_worker

        run_phase_worker(STOP)
        return 0
    print("usage: python -m streams worker|phase-worker", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

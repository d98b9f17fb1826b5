"""`python -m streams worker`: one worker process of the orchestrator group."""

from __future__ import annotations

import signal
import sys


def main(argv: list[str]) -> int:
    if argv[:1] != ["worker"]:
        print("usage: python -m streams worker", file=sys.stderr)
        return 2
    # Until the worker installs its own handlers, SIGTERM means: exit cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from streams.worker import run_worker

    run_worker()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

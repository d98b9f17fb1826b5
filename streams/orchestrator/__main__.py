"""`python -m streams.orchestrator` (or `python -m streams worker`): one worker
process of the orchestrator group, until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

from streams.stop import STOP


def main() -> int:
    from streams.orchestrator.worker import run_worker

    run_worker(STOP)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m streams.dataplane` (or `python -m streams phase-worker`): one phase
worker of the data plane, until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

from streams.stop import STOP


def main() -> int:
    from streams.dataplane.worker import run_phase_worker

    run_phase_worker(STOP)
    return 0


if __name__ == "__main__":
    sys.exit(main())

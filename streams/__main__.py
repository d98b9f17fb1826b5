"""`python -m streams worker`: one worker process of the orchestrator group
(`python -m streams.orchestrator`); `python -m streams phase-worker`: one phase
worker of the data plane (`python -m streams.dataplane`)."""

from __future__ import annotations

import sys

from streams.stop import STOP  # noqa: F401  (first: SIGTERM during start-up is a clean stop)


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        from streams.orchestrator.__main__ import main as run_orchestrator

        return run_orchestrator()
    if argv[:1] == ["phase-worker"]:
        from streams.dataplane.__main__ import main as run_dataplane

        return run_dataplane()
    print("usage: python -m streams worker|phase-worker", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

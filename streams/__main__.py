"""`python -m streams worker`: one worker process of the orchestrator group."""

from __future__ import annotations

import sys

from streams.worker import run_worker


def main(argv: list[str]) -> int:
    if argv[:1] != ["worker"]:
        print("usage: python -m streams worker", file=sys.stderr)
        return 2
    run_worker()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

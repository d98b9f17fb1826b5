"""`python -m streams.dataplane`: one phase worker of the data plane
(the same as `python -m streams phase-worker`)."""

import sys

from streams.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["phase-worker"]))

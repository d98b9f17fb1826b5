"""`python -m streams.orchestrator`: one worker process of the orchestrator group
(the same as `python -m streams worker`)."""

import sys

from streams.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["worker"]))

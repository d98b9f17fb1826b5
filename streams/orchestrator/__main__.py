"""`python -m streams.orchestrator` (or `python -m streams worker`): one worker
process of the orchestrator group, until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import sys

from streams.stop import STOP


def main() -> int:
    """Exit status as `config.exits` says: FENCED when Kafka fenced this
    instance or its client failed past recovery."""
    from confluent_kafka import KafkaException

    from config.exits import FENCED, STOPPED
    from streams.orchestrator.worker import run_worker

    try:
        run_worker(STOP)
    except KafkaException as exc:
        logging.getLogger("streams.orchestrator").critical("stopping: %s", exc)
        return FENCED
    return STOPPED


if __name__ == "__main__":
    sys.exit(main())

"""Run the Faust worker: the orchestrator agent in one process of the group."""

from __future__ import annotations

import faust

from streams import orchestrator  # noqa: F401  (registers the agent)
from streams.app import app, settings


def run_worker(loglevel: str | None = None) -> None:
    """Run until SIGTERM/SIGINT; Faust commits and leaves the group on the way out."""
    worker = faust.Worker(app, loglevel=loglevel or settings.log_level)
    worker.execute_from_commandline()

"""Run one orchestrator worker process until SIGTERM/SIGINT.

The loop's librdkafka calls block, so it owns the main thread and no event
loop is involved; a signal (handled in `streams.__main__`) only sets the stop
flag, and the loop finishes its batch and commits.
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import start_http_server

from config import load_settings
from streams.ops_metrics import OpsMetrics
from streams.orchestrator.loop import OrchestratorLoop


def run_worker(stop: threading.Event) -> None:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.api_host)
        OpsMetrics(settings, stop).start()  # DLQ depth and consumer lag, from Kafka
    OrchestratorLoop(settings, stop).run()

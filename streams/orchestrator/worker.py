"""Run one orchestrator worker process until SIGTERM/SIGINT.

The loop's librdkafka calls block, so it owns the main thread and no event
loop is involved; a signal (handled in `streams.__main__`) only sets the stop
flag, and the loop finishes its batch and commits.
"""

from __future__ import annotations

import threading

from streams.kafka import tracing
from streams.orchestrator.kafka_gauges import OpsMetrics
from streams.orchestrator.loop import OrchestratorLoop
from streams.process import start_process


def run_worker(stop: threading.Event) -> None:
    settings = start_process("worker")
    tracing.start(settings, "migrator-orchestrator")
    if settings.worker.metrics_port:
        OpsMetrics(settings, stop).start()  # DLQ depth and consumer lag, from Kafka
    OrchestratorLoop(settings, stop).run()

"""What every worker process does first: its settings, its logging, and its
/metrics endpoint (when a port is set)."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from config import Settings, load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def start_process(metrics_port: str) -> Settings:
    """Settings from the environment; logging on; /metrics served on the port
    named by the setting `metrics_port` (0: none)."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    port = int(getattr(settings, metrics_port))
    if port:
        start_http_server(port, addr=settings.api_host)
    return settings

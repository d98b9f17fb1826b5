"""What every worker process does first: its settings, its logging, and its
/metrics endpoint (when a port is set)."""

from __future__ import annotations

from prometheus_client import start_http_server

from config import Settings, load_settings
from config.logs import configure_logging


def start_process(group: str) -> Settings:
    """Settings from the environment; logging on; /metrics served on the port
    of the settings group `group` (0: none)."""
    settings = load_settings()
    configure_logging(settings)
    port = int(getattr(settings, group).metrics_port)
    if port:
        start_http_server(port, addr=settings.api.host)
    return settings

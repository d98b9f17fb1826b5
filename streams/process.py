"""What every worker process does first: its settings, its logging, and its
/metrics endpoint (when a port is set)."""

from __future__ import annotations

import sys

from prometheus_client import start_http_server
from pydantic import ValidationError

from config import Settings, load_settings
from config.exits import MISCONFIGURED
from config.logs import configure_logging


def start_process(group: str) -> Settings:
    """Settings from the environment; logging on; /metrics served on the port
    of the settings group `group` (0: none). Invalid settings end the process
    with exit status MISCONFIGURED: restarting it cannot help."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        sys.exit(MISCONFIGURED)
    configure_logging(settings)
    port = int(getattr(settings, group).metrics_port)
    if port:
        start_http_server(port, addr=settings.api.host)
    return settings

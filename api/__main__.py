"""`python -m api`: serve the HTTP API until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

from aiohttp import web

from api.app import create_app
from api.timeouts import server_options
from config import load_settings
from config.logs import configure_logging
from domain.errors import ConfigurationError
from streams.kafka import tracing


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    tracing.start(settings, "migrator-api")
    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"api: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    web.run_app(app, host=settings.api.host, port=settings.api.port, **server_options(settings))


if __name__ == "__main__":
    main()

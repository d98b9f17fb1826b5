"""`python -m api`: serve the HTTP API until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from api.app import create_app
from config import load_settings
from domain.errors import ConfigurationError


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"api: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    web.run_app(app, host=settings.api_host, port=settings.api_port)


if __name__ == "__main__":
    main()

"""`python -m api`: serve the HTTP API until SIGTERM/SIGINT."""

from __future__ import annotations

import logging

from aiohttp import web

from api.app import create_app
from config import load_settings


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    web.run_app(create_app(settings), host=settings.api_host, port=settings.api_port)


if __name__ == "__main__":
    main()

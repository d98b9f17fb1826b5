"""`python -m projections`: run the projector until SIGTERM/SIGINT, or until
one of our errors stops it (halted or fenced): exit code 1 and its message,
without a traceback."""

from __future__ import annotations

import asyncio
import logging
import signal

from config import load_settings
from domain.errors import MigratorError
from projections.projector import Projector


async def run() -> None:
    projector = Projector(load_settings())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, projector.stop)
    await projector.run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(run())
    except MigratorError as exc:
        raise SystemExit(f"projector stopped: {exc}") from None


if __name__ == "__main__":
    main()

"""`python -m projections`: run the projector until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from config import load_settings
from projections.projector import Projector


async def run() -> None:
    projector = Projector(load_settings())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, projector.stop)
    await projector.run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run())


if __name__ == "__main__":
    main()

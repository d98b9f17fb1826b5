"""`python -m projections`: run the projector until SIGTERM/SIGINT, or until
one of our errors stops it (fenced, or the read model's database away longer
than PROJECTOR_DB_OUTAGE_SECONDS): exit code 1 and its message, without a
traceback."""

from __future__ import annotations

import asyncio
import signal

from config import Settings, load_settings
from config.logs import configure_logging
from domain.errors import MigratorError
from projections.collector import pace_for_many_objects
from projections.projector import Projector
from streams.kafka import tracing


async def run(settings: Settings) -> None:
    projector = Projector(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, projector.stop)
    await projector.run()


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    tracing.start(settings, "migrator-projector")
    pace_for_many_objects()
    try:
        asyncio.run(run(settings))
    except MigratorError as exc:
        raise SystemExit(f"projector stopped: {exc}") from None


if __name__ == "__main__":
    main()

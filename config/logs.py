"""Logging of every process: one format, at the level `LOG_LEVEL` names."""

from __future__ import annotations

import logging

from config.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(settings: Settings) -> None:
    """Log to stderr at the settings' level (`debug`, `info`, `warning`...)."""
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)

"""Logging of every process: one format, at the level `LOG_LEVEL` names, with
every secret the process knows masked in whatever it writes."""

from __future__ import annotations

import logging

from config.redaction import redact, secrets_of
from config.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks the secrets: the message, its arguments
    and any traceback alike."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(LOG_FORMAT)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure_logging(settings: Settings) -> None:
    """Log to stderr at the settings' level (`debug`, `info`, `warning`...)."""
    log_to_stderr(settings.log_level, secrets_of(settings))


def log_to_stderr(level: str, secrets: list[str]) -> None:
    """Log to stderr at `level`, masking `secrets` (a process given them by
    its parent rather than by settings of its own)."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    formatter = RedactingFormatter(secrets)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)

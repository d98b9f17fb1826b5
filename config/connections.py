"""Named database connections of the phase workers.

A migration spec names its source and target connections; only the workers
know where they are and with which secret. The password comes from the
configuration (a secret type that never prints) or from a file, and the
connection string built here is never logged, sent or stored.
"""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from config.errors import UnknownConnection

__all__ = ["Connection", "UnknownConnection"]  # the error is raised by Settings.connection


class Connection(BaseModel):
    """Where one named database is, and how to log in to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    database: str
    user: str
    password: SecretStr | None = None
    password_file: Path | None = None
    options: dict[str, str] = Field(
        default_factory=dict, description="extra libpq parameters, e.g. sslmode"
    )

    def secret(self) -> str | None:
        """The password, read from the file at the moment it is needed."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return None

    def conninfo(self, application_name: str = "migrator-phase-worker") -> str:
        """The libpq connection string: holds the secret, so never log it."""
        params: dict[str, str | int] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "application_name": application_name,
            **self.options,
        }
        secret = self.secret()
        if secret is not None:
            params["password"] = secret
        return make_conninfo("", **params)

    def describe(self) -> str:
        """What may be shown: where, never the secret."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

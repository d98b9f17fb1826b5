"""Errors of the configuration, in the product's one tree (domain.errors)."""

from __future__ import annotations

from domain.errors import ConfigurationError

__all__ = ["UnknownConnection"]


class UnknownConnection(ConfigurationError):
    """A spec names a connection this worker does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no connection named {name!r} is configured on this worker")
        self.name = name

"""Errors the Kafka edge raises, in the product's one tree (domain.errors)."""

from __future__ import annotations

from domain.errors import NotFound

__all__ = ["NoSuchTopic"]


class NoSuchTopic(NotFound):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist")
        self.topic = topic

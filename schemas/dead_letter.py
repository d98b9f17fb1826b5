"""The dead-letter envelope: a record given up on, with its original bytes and why.

A record, not a domain type: it lives beside the codec that writes it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeadLetter:
    original_topic: str
    original_partition: int
    original_offset: int
    error_class: str  # fully qualified
    error_message: str
    failed_at: str
    key: bytes | None = None
    value: bytes | None = None
    attempts: int = 1
    type: str = "DeadLetter"

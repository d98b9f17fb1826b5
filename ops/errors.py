"""Errors of the operator tools (dead letters, topic replay, rebuild), each
with a message an operator can act on. The CLI prints it and exits non-zero;
the API answers 4xx.

    OperatorError          the request cannot be done as asked
    ├── NoSuchTopic        the topic does not exist
    ├── NoSuchRecord       no committed record at that partition and offset
    └── BadSelection       a malformed or impossible selection (offsets, times)
"""

from __future__ import annotations


class OperatorError(Exception):
    """What went wrong, in words an operator can act on."""


class NoSuchTopic(OperatorError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist")


class NoSuchRecord(OperatorError):
    pass


class BadSelection(OperatorError):
    pass

"""Errors of the operator tools (dead letters, topic replay), each with a
message an operator can act on; the classes sit in the one tree
(domain.errors), whose flags make the CLI print the message and exit non-zero
and the API answer 4xx.

    MigratorError
    ├── NotFound                          404
    │   ├── NoSuchTopic  (streams.kafka)  the topic does not exist
    │   └── NoSuchRecord                  no committed record at that partition and offset
    ├── OperatorError                     422 the request cannot be done as asked
    │   └── BadSelection                  a malformed or impossible selection (offsets, times)
    └── TraceUnavailable                  503 retriable: the trace backend did not answer
"""

from __future__ import annotations

from domain.errors import MigratorError, NotFound
from streams.kafka.errors import NoSuchTopic

__all__ = ["BadSelection", "NoSuchRecord", "NoSuchTopic", "OperatorError", "TraceUnavailable"]


class OperatorError(MigratorError):
    """What went wrong, in words an operator can act on."""

    status = 422


class NoSuchRecord(NotFound):
    pass


class BadSelection(OperatorError):
    pass


class TraceUnavailable(MigratorError):
    """The trace backend did not answer."""

    retriable = True
    status = 503

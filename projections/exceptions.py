"""Errors of the projector.

ProjectionError
├── SequenceGap       an event's sequence skips ahead: refuse, never guess
├── SequenceConflict  an event repeats a sequence already applied, with other
│                     content: the log forked; refuse
├── OffsetConflict    the stored offset moved under us: another projector
│                     owns the partition now (fenced); roll back
└── RebuildError      a rebuild by replay cannot go on; says why (database,
    │                 Kafka, topic, locks); the live read model is untouched
    └── RebuildStopped  stopped by the operator before the swap
"""

from __future__ import annotations


class ProjectionError(Exception):
    retriable = False


class SequenceGap(ProjectionError):
    pass


class SequenceConflict(ProjectionError):
    pass


class OffsetConflict(ProjectionError):
    retriable = True


class RebuildError(ProjectionError):
    pass


class RebuildStopped(RebuildError):
    pass

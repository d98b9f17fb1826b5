"""Errors of the projector, in the product's one tree (domain.errors). The
projector halts on them; on a retriable one it was fenced and leaves the group.

ProjectionError
├── SequenceGap       an event's sequence skips ahead: refuse, never guess
├── SequenceConflict  an event repeats a sequence already applied, with other
│                     content: the log forked; refuse
├── OffsetConflict    retriable, 409: the stored offset moved under us: another
│                     projector owns the partition now (fenced); roll back
└── RebuildError      a rebuild by replay cannot go on; says why (database,
    │                 Kafka, topic, locks); the live read model is untouched
    └── RebuildStopped  stopped by the operator before the swap
"""

from __future__ import annotations

from domain.errors import MigratorError


class ProjectionError(MigratorError):
    pass


class SequenceGap(ProjectionError):
    pass


class SequenceConflict(ProjectionError):
    pass


class OffsetConflict(ProjectionError):
    retriable = True
    status = 409


class RebuildError(ProjectionError):
    pass


class RebuildStopped(RebuildError):
    pass

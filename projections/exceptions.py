"""Errors of the projector, in the product's one tree (domain.errors). A gap,
a fork or an unstorable event is no error: it quarantines its migration
(`projections.quarantine`) and the projector goes on.

ProjectionError
├── OffsetConflict        retriable, 409: the stored offset moved under us: another
│                         projector owns the partition now (fenced); roll back
├── ReadModelUnreachable  the read model's database stayed away longer than
│                         PROJECTOR_DB_OUTAGE_SECONDS: exit, a supervisor restarts it
├── RefoldError           a refold of one migration cannot go on; says why (nothing
│                         of it in the log, Kafka, the topic, locks); nothing changed
└── RebuildError          a rebuild by replay cannot go on; says why (database,
    │                     Kafka, topic, locks); the live read model is untouched
    └── RebuildStopped    stopped by the operator before the swap
"""

from __future__ import annotations

from domain.errors import MigratorError


class ProjectionError(MigratorError):
    pass


class OffsetConflict(ProjectionError):
    retriable = True
    status = 409


class ReadModelUnreachable(ProjectionError):
    pass


class RefoldError(ProjectionError):
    pass


class RebuildError(ProjectionError):
    pass


class RebuildStopped(RebuildError):
    pass

"""Why a phase stops short, as a branch of the product's one tree
(domain.errors) whose classes say what to do.

    PhaseError                 `retriable` decides retry vs fail
    ├── TransientError         retriable, with backoff and jitter. `unavailable`:
    │   │                      the database is away (connection lost or refused,
    │   │                      recovering, no pooled connection), retried until
    │   │                      PHASE_RETRY_BUDGET_SECONDS is spent; else one try
    │   │                      lost (serialization failure, deadlock, lock
    │   │                      timeout, every pooled connection busy), retried
    │   │                      PHASE_RETRY_ATTEMPTS times
    │   └── BreakerOpen        the connection's breaker is open: the next try
    │                          waits `retry_in` for its trial (never gives up)
    ├── StatementCancelled     the server cancelled a statement: its statement
    │                          timeout, or a cancel from outside. Fail the phase
    │                          at once: a retry would run as long again, and the
    │                          database answered, so the breaker does not count it
    ├── Interrupted            the run was asked to stop (pause, cancel, revoke,
    │                          shutdown) and its statement in flight was cancelled:
    │                          the run stops and resumes from its checkpoint
    ├── SnapshotLost           extract's snapshot of the source can no longer be
    │                          imported (its holder is gone): extract starts over
    │                          in a new one (streams.dataplane.snapshots)
    ├── SpecError              the spec does not fit the tables: fail the phase
    │                          (also a domain SpecError, as the parser raises)
    ├── ValidationFailed       the score is below the spec's minimum
    ├── ReconcileMismatch      target and transformed source differ
    │   └── CutoverMismatch    a row changed since the snapshot differs at cutover
    ├── CaptureRefused         change capture cannot run on this source (wal_level,
    │                          REPLICATION privilege, replica identity, output
    │                          plugin, a mapping changes cannot go through):
    │                          refused before the copy starts, never retried
    └── SchemaDrifted          a DDL changed the captured source table (`change`
                               names it): that migration's capture stops before
                               applying anything past it (streams.dataplane.cdc)

Anything else a database raises (a missing table, a constraint) fails the
phase with its message; retrying would not change it.
"""

from __future__ import annotations

from domain import errors


class PhaseError(errors.MigratorError):
    pass


class TransientError(PhaseError):
    retriable = True
    status = 503

    def __init__(self, message: str, connection: str = "", *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.connection = connection
        self.unavailable = unavailable


class BreakerOpen(TransientError):
    def __init__(self, message: str, connection: str, retry_in: float) -> None:
        super().__init__(message, connection, unavailable=True)
        self.retry_in = retry_in


class StatementCancelled(PhaseError):
    pass


class Interrupted(PhaseError):
    pass


class SnapshotLost(PhaseError):
    def __init__(self, snapshot_id: str | None, why: str) -> None:
        super().__init__(f"snapshot {snapshot_id} lost ({why})")
        self.snapshot_id, self.why = snapshot_id, why


class SpecError(PhaseError, errors.SpecError):
    pass


class ValidationFailed(PhaseError):
    pass


class ReconcileMismatch(PhaseError):
    pass


class CutoverMismatch(ReconcileMismatch):
    pass


class CaptureRefused(PhaseError):
    pass


class SchemaDrifted(PhaseError):
    def __init__(self, table: str, change: str) -> None:
        super().__init__(f"schema drift on {table}: {change}; change capture stopped")
        self.table, self.change = table, change

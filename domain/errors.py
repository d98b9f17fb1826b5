"""The one error tree: every exception the product raises descends from
`MigratorError`, and each class says what its callers do with it.

Two class-level flags carry the decision, so a caller reads them instead of
listing classes:

- `retriable`: would the same call likely succeed a little later? The data
  plane's retry policy retries exactly these; the projector leaves the group
  on them and halts on the rest.
- `status`: the HTTP status the API answers with (one mapping, api.errors).
  Below 500 the message goes to the client; 500 and above is logged as ours.

This module holds the root and the branches several packages share; each
package keeps its own small errors module whose classes subclass them.

    MigratorError                       not retriable, 500: a fault of ours
    ├── ConfigurationError              a process is set up wrong; it refuses to start
    │   ├── config.UnknownConnection      a spec names a connection this worker lacks
    │   └── api.AuthConfigError           API tokens missing or malformed
    ├── SpecError                   422 a spec's mapping or rules are wrong, or do
    │   │                               not fit the tables; the message says where
    │   └── streams.dataplane.SpecError   found while running a phase (also a PhaseError)
    ├── api.BadRequest              400 a malformed request: its body, a header or a
    │                                   query parameter (the message says which)
    ├── api.InvalidBody             422 a body holding a value no store can hold
    │                                   (domain.text); names each field
    ├── NotFound                    404 what a request names does not exist
    │   ├── streams.kafka.NoSuchTopic     the topic does not exist
    │   └── ops.NoSuchRecord              no committed record at that partition and offset
    ├── streams.kafka.ProduceQueueFull  503 retriable: the producer's queue stayed full
    │                                   (deliveries not draining; also a BufferError)
    ├── streams.kafka.TransactionAborted 503 retriable: aborted after an abortable error;
    │                                   the inputs are read again (also a KafkaException)
    ├── schemas.RecordError             a record cannot be encoded or decoded, or fails
    │                                   its schema: a consumed one goes to the DLQ
    ├── streams.dataplane.PhaseError    a phase stops short
    │   ├── TransientError          503 retriable: the database away, a lock timeout,
    │   │   │                           a serialization failure; retried with backoff
    │   │   └── BreakerOpen               the connection's breaker is open; carries
    │   │                                 `retry_in`, the wait until its trial
    │   ├── StatementCancelled            the server cancelled a statement (its timeout)
    │   ├── Interrupted                   a stopping run's statement was cancelled
    │   ├── SnapshotLost                  extract's snapshot of the source is gone
    │   ├── keeping.Refused               a snapshot keeper could not start holding
    │   ├── SpecError                     (above)
    │   ├── ValidationFailed              the score is below the spec's minimum
    │   ├── ReconcileMismatch             target and transformed source differ
    │   │   └── CutoverMismatch           a row changed since the snapshot differs at cutover
    │   ├── CaptureRefused                change capture cannot run on this source
    │   └── SchemaDrifted                 a DDL changed a captured table: its capture stops
    ├── projections.ProjectionError     the projector or a repair of the read model stops
    │   ├── OffsetConflict          409 retriable: another projector owns the
    │   │                               partition now (fenced); leave the group
    │   ├── ReadModelUnreachable          the read model's database stayed away too long
    │   ├── RefoldError                   a refold of one migration cannot go on
    │   └── RebuildError                  a rebuild by replay cannot go on
    │       └── RebuildStopped            stopped by the operator before the swap
    ├── ops.TraceUnavailable        503 retriable: the trace backend did not answer
    └── ops.OperatorError           422 an operator's request cannot be done as asked
        └── BadSelection                  a malformed or impossible selection

Flags not shown are inherited from the parent.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["ConfigurationError", "MigratorError", "NotFound", "SpecError"]


class MigratorError(Exception):
    """The root. Its message is written for the person who reads it."""

    retriable: ClassVar[bool] = False
    status: ClassVar[int] = 500


class ConfigurationError(MigratorError):
    pass


class SpecError(MigratorError):
    status = 422


class NotFound(MigratorError):
    status = 404

"""Commands (what an operator asks) and phase results (what a phase worker
reports): the two kinds of input the orchestrator decides on.

Each kind has one envelope base (its id and the migration it addresses);
each record declares only its payload. Records are built by keyword, and a
record's `type` is its class name, which is also its Avro schema's name and
its JSON `type`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.options import Mode, OnExisting


class Named:
    """A record whose type is its class: `type` is derived, never set."""

    @property
    def type(self) -> str:
        return self.__class__.__name__


@dataclass(frozen=True, kw_only=True)
class MigrationSpec:
    """What to copy where. Connections are names configured on the workers.

    `source_key` names the key column, or several separated by commas (a
    composite key: `"tenant_id, id"`). It, `on_existing` and `mode` hold the
    text the record carried; domain.options and domain.spec say what they
    mean, and `domain.spec.parse_spec` checks and types them. `cdc`: after
    load and reconcile, the source's changes are captured and applied (the
    `sync` phase) until a cutover (domain.live).
    """

    source_connection: str
    source_table: str
    source_key: str
    target_connection: str
    target_table: str
    mapping: Mapping[str, Any] = field(default_factory=dict)
    rules: tuple[Mapping[str, Any], ...] = ()
    min_score: float = 1.0
    batch_size: int = 1000
    parallelism: int = 1
    on_existing: str = OnExisting.UPSERT.value
    mode: str = Mode.FULL.value
    cdc: bool = False


@dataclass(frozen=True, kw_only=True)
class SnapshotRef:
    """Which view of the source a phase read: the exported snapshot's id, when
    it was taken (the source's clock) and the source's WAL position then."""

    id: str
    taken_at: str
    lsn: str


@dataclass(frozen=True, kw_only=True)
class CommandEnvelope(Named):
    """What every command carries: its idempotency key and its migration."""

    command_id: str
    migration_id: str


@dataclass(frozen=True, kw_only=True)
class StartMigration(CommandEnvelope):
    spec: MigrationSpec


@dataclass(frozen=True, kw_only=True)
class PauseMigration(CommandEnvelope):
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ResumeMigration(CommandEnvelope):
    pass


@dataclass(frozen=True, kw_only=True)
class CancelMigration(CommandEnvelope):
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RetryMigration(CommandEnvelope):
    pass


@dataclass(frozen=True, kw_only=True)
class CutoverOptions:
    """How a cutover runs: the most lag it waits for (None: that measure is
    not a bound) and whether writes on the source table are frozen first."""

    max_lag_bytes: int | None = None
    max_lag_seconds: float | None = None
    freeze: bool = False


@dataclass(frozen=True, kw_only=True)
class CutoverResult:
    """What a cutover ended with: the source position applied last, the rows
    and checksums of both sides, and what it checked and applied."""

    position: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str
    changes_applied: int = 0
    rows_verified: int = 0
    sequences_synced: int = 0
    frozen: bool = False


@dataclass(frozen=True, kw_only=True)
class CutoverMigration(CommandEnvelope):
    """Replace a SYNCING migration's sync run by a cutover run (domain.live)."""

    max_lag_bytes: int | None = None
    max_lag_seconds: float | None = None
    freeze: bool = False


@dataclass(frozen=True, kw_only=True)
class AbortCutover(CommandEnvelope):
    """Stop a cutover before its switch; the migration syncs again."""

    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class DiffMigration(CommandEnvelope):
    """Compare the target with the source row by row, now (a loaded migration)."""


@dataclass(frozen=True, kw_only=True)
class RepairMigration(CommandEnvelope):
    """Re-copy exactly the keys the last diff found differing, then diff again."""


Command = (
    StartMigration
    | PauseMigration
    | ResumeMigration
    | CancelMigration
    | RetryMigration
    | CutoverMigration
    | AbortCutover
    | DiffMigration
    | RepairMigration
)


# Phase results. `run` echoes the RunPhase task they answer: a result of an
# earlier run (before a pause, a failure or a retry) is stale and ignored.


@dataclass(frozen=True, kw_only=True)
class ResultEnvelope(Named):
    """What every phase result carries: its idempotency key, and the
    migration, phase and run it answers.

    `phase` is the name the task gave (a `Phase` for every task this code
    writes); the records' field is a free string, so it stays one here.
    """

    result_id: str
    migration_id: str
    phase: str
    run: int


@dataclass(frozen=True, kw_only=True)
class PhaseProgressed(ResultEnvelope):
    """Rows and bytes done so far (over every run of the phase, as its
    checkpoints count them); `snapshot`: the source snapshot it reads in.
    A live phase (sync, cutover) adds its lag and the source position it
    applied last (domain.live)."""

    rows_done: int
    rows_total: int
    checkpoint: str | None = None
    bytes_done: int = 0
    snapshot: SnapshotRef | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    position: str | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseSucceeded(ResultEnvelope):
    """`cutover`: what a cutover run ended with (only a cutover sets it)."""

    rows_done: int
    score: float | None = None
    bytes_done: int = 0
    snapshot: SnapshotRef | None = None
    cutover: CutoverResult | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseHalted(ResultEnvelope):
    """The phase stopped after a pause request, at `checkpoint`."""

    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseErrored(ResultEnvelope):
    """`kind` names a failure the orchestrator treats apart (domain.live's
    ErrorKind: "schema_drifted"); None for every other failure."""

    reason: str
    checkpoint: str | None = None
    kind: str | None = None


@dataclass(frozen=True, kw_only=True)
class DiffFigures:
    """What a row-level diff of source and target found (streams.dataplane.diff).

    `missing`: keys in the source, not the target; `extra`: in the target, not
    the source; `different`: in both, with other values. `differing` counts
    the keys a repair re-copies (extra keys only when the target holds
    nothing but the migration's rows). `samples` holds a bounded list of keys
    per kind, `ranges` the key ranges compared (bounded) with both sides'
    counts and checksums; the full key lists stay in the target database."""

    missing: int = 0
    extra: int = 0
    different: int = 0
    differing: int = 0
    source_rows: int = 0
    target_rows: int = 0
    samples: Mapping[str, Any] = field(default_factory=dict)
    ranges: tuple[Mapping[str, Any], ...] = ()
    ranges_compared: int = 0
    snapshot: SnapshotRef | None = None
    taken_at: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DiffTaken(DiffFigures, ResultEnvelope):
    """A phase (reconcile, diff, repair) compared source and target row by row."""


PhaseResult = PhaseProgressed | PhaseSucceeded | PhaseHalted | PhaseErrored | DiffTaken
Input = Command | PhaseResult

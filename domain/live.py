"""Live migrations: the `sync` and `cutover` phases of a spec with `cdc` on,
as the orchestrator and the data plane agree on them.

States and tasks:

- After `reconcile` succeeds, a cdc migration is not completed: the
  orchestrator requests the phase `sync` (PhaseRequested, RunPhase) and the
  migration is SYNCING. A sync run applies the source's changes until another
  task for the migration supersedes it; it never succeeds on its own (a
  PhaseSucceeded of `sync` causes nothing).
- A sync run reports `PhaseProgressed` with `lag_bytes` (the source's WAL
  after the position applied), `lag_seconds` (how old the oldest change not
  yet applied is; 0 when none is pending) and `position` (the source LSN
  applied last, e.g. "0/1A2B3C4D"). They become `PhaseProgressRecorded` and
  the migration's current lag.
- `CutoverMigration` (only while SYNCING) causes `CutoverRequested` and a
  RunPhase of `cutover` with `cutover=CutoverOptions(max_lag_bytes,
  max_lag_seconds, freeze)`, which supersedes the sync run; the migration is
  CUTTING_OVER. The cutover waits until lag_bytes <= max_lag_bytes and
  lag_seconds <= max_lag_seconds (a None bound is not a bound); with
  `freeze` it also applies everything up to the freeze point.
- The cutover run answers `PhaseSucceeded(phase="cutover",
  cutover=CutoverResult(...))`: `CutoverCompleted` (the result as it is) and
  `MigrationCompleted` follow. A success without its result fails the
  migration, saying so.
- `AbortCutover` (only while CUTTING_OVER) causes `CutoverAborted` and a fresh
  RunPhase of `sync` (from the last checkpoint), which supersedes the cutover
  run: a superseded cutover run unfreezes the source before it stops. Once the
  run has switched, it no longer stops; its success is then stale, so a
  cutover run should not switch after it was asked to stop.
- Pause is accepted while SYNCING (not while CUTTING_OVER: abort first);
  resume requests `sync` again. Cancel reaches the worker as a CancelPhase, as
  for every migration (the data plane drops the slot).

Schema drift: a live run that meets a DDL change on the source table answers
`PhaseErrored(kind="schema_drifted", reason=<the change, named>)`. The
orchestrator records `SchemaDrifted(phase, reason, checkpoint)` and the
migration is PAUSED with that reason, its phase `sync` (a resume syncs again).
Only that migration stops. Any other `kind` (or none) is an ordinary failure.

Slots: a migration's replication slot on its source is `slot_name(id)`
(the data plane's streams.dataplane.cdc.slots names it so; a test holds the
two equal), so an operator's tools can tell whose a slot is, and a slot no
live migration owns (unknown, COMPLETED or CANCELLED) as left behind.
"""

from __future__ import annotations

import hashlib
import math
import re
from enum import StrEnum

from domain.commands import CutoverMigration, CutoverOptions


class ErrorKind(StrEnum):
    """`PhaseErrored.kind`: a failure the orchestrator treats apart."""

    SCHEMA_DRIFTED = "schema_drifted"


def cutover_problem(cmd: CutoverMigration) -> str | None:
    """Why a cutover's options cannot be used (None: they can)."""
    if cmd.max_lag_bytes is not None and cmd.max_lag_bytes < 0:
        return f"max_lag_bytes must be 0 or more, not {cmd.max_lag_bytes}"
    seconds = cmd.max_lag_seconds
    if seconds is not None and (not math.isfinite(seconds) or seconds < 0):
        return f"max_lag_seconds must be a finite number, 0 or more, not {seconds}"
    return None


def options_of(cmd: CutoverMigration) -> CutoverOptions:
    return CutoverOptions(
        max_lag_bytes=cmd.max_lag_bytes, max_lag_seconds=cmd.max_lag_seconds, freeze=cmd.freeze
    )


SLOT_PREFIX = "migrator_"


def slot_name(migration_id: str) -> str:
    """`migrator_<readable part>_<digest>`: at most 63 characters of [a-z0-9_],
    the same for the same id."""
    readable = re.sub(r"[^a-z0-9_]", "_", migration_id.lower())[:32]
    digest = hashlib.sha256(migration_id.encode()).hexdigest()[:16]
    return f"{SLOT_PREFIX}{readable}_{digest}"


def left_behind(status: str | None) -> bool:
    """A slot whose migration (its status; None: unknown) will never read it again."""
    return status is None or status in ("COMPLETED", "CANCELLED")

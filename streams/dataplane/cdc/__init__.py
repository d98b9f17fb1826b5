"""Change capture: a live source's changes after the copy's snapshot,
applied exactly once to the target, and the cutover that ends it.

How it fits the phases (spec `cdc`):

- extract (streams.dataplane.extract) first runs `guards.check_source`
  (CaptureRefused: wal_level, REPLICATION, replica identity, plugin) and
  `apply.Routes.of` (a mapping changes can go through), then takes its
  snapshot from the migration's replication slot, created with it
  (`slots.create_with_snapshot`, by the keeper process or the in-process
  holder), and stores where capture starts in the target
  (`positions.start`: the slot's consistent point and the table's shape).
- `sync` (sync.run) applies changes until stopped, reporting Progress with
  `lag_bytes`, `lag_seconds` and `position`.
- `cutover` (cutover.run; options `max_lag_bytes`, `max_lag_seconds`,
  `freeze`) catches up, verifies, syncs sequences, drops the slot and
  finishes with `Finished.cutover`, a domain.CutoverResult (the runner
  answers it as PhaseSucceeded.cutover). SchemaDrifted is answered as
  PhaseErrored(kind="schema_drifted").
- a cancel (runner.cancel) calls `cleanup`: the slot dropped, the source
  unfrozen.

The functions the phases use, by module:

- slots: `slot_name(migration_id)`, `create_with_snapshot(conn, slot)`,
  `peek(conn, slot, table, most)`, `advance(conn, slot, lsn)`,
  `lag(conn, slot)`, `drop(conn, slot)`, `retained_bytes(conn)` and
  `slot_retained_bytes(source_db)` (WAL bytes each `migrator_` slot keeps,
  by slot name: the metric's figure).
- guards: `check_source(conn, table, source_key)`, `shape_of(conn, table)`.
- changes: `transactions(rows)` (wal2json rows into Transaction/Change).
- drift: `Shape`, `check_change`, `check_catalog` (SchemaDrifted).
- apply: `Routes.of(mapping, source_key, columns, target)`,
  `apply(conn, routes, migration_id, changes)`.
- positions: `prepare`, `start`, `load`, `save`, `keys` (the target's
  `migrator_state.cdc_positions` and `cdc_keys`).
- capture: `Capture.open(ctx)`, `Capture.step()` -> Stepped.
- freeze: `freeze(conn, table, migration_id)` -> freeze LSN,
  `unfreeze(conn, table)`, `frozen(conn, table)`.
- verify: `differing(...)`, `figures(conn, table, columns)`,
  `set_sequences(...)`.
"""

from domain import MigrationSpec
from streams.dataplane.cdc.cleanup import cleanup
from streams.dataplane.cdc.slots import slot_name, slot_retained_bytes

SYNC, CUTOVER = "sync", "cutover"
__all__ = ["CUTOVER", "SYNC", "captures", "cleanup", "slot_name", "slot_retained_bytes"]


def captures(spec: MigrationSpec) -> bool:
    """Whether the spec asks for change capture (`cdc`)."""
    return spec.cdc

"""The replication slots' gauges, refreshed from `ops.slots` by the process
that exports them (the API, when it is given the databases' connections):
a scrape never waits for a database.

    migrator_cdc_slot_retained_bytes{connection, slot}   WAL the slot keeps
    migrator_cdc_slot_active{connection, slot}           1 while a session reads it

A slot that is gone loses its series at the next refresh (a dropped slot
must not keep an alert firing); a database that cannot be read keeps its
last figures and counts in migrator_cdc_slot_refresh_failures_total.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge

from config.connections import Connection
from ops.slots import SlotReport, slot_report

RETAINED = Gauge(
    "migrator_cdc_slot_retained_bytes",
    "WAL bytes a migration's replication slot keeps on its database (current position minus"
    " the slot's restart position)",
    ["connection", "slot"],
)
ACTIVE = Gauge(
    "migrator_cdc_slot_active", "1 while a session reads the slot, else 0", ["connection", "slot"]
)
FAILURES = Counter(
    "migrator_cdc_slot_refresh_failures_total",
    "Refreshes of the slot gauges that could not read a database",
    ["connection"],
)


def refresh(connections: Mapping[str, Connection]) -> SlotReport:
    """Read every database's slots into the gauges; the report read."""
    report = slot_report(connections)
    seen = {(s.connection, s.slot) for s in report.slots}
    for slot in report.slots:
        RETAINED.labels(slot.connection, slot.slot).set(slot.retained_bytes)
        ACTIVE.labels(slot.connection, slot.slot).set(1 if slot.active else 0)
    for connection in report.unreachable:
        FAILURES.labels(connection).inc()
    _forget(seen, kept=set(report.unreachable))
    return report


_EXPORTED: set[tuple[str, str]] = set()  # (connection, slot) of the series set so far


def _forget(seen: set[tuple[str, str]], kept: set[str]) -> None:
    """Remove the series of slots no longer there (not of unreadable databases)."""
    gone = {labels for labels in _EXPORTED - seen if labels[0] not in kept}
    for labels in gone:
        RETAINED.remove(*labels)
        ACTIVE.remove(*labels)
    _EXPORTED.difference_update(gone)
    _EXPORTED.update(seen)

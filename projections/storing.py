"""Write a folded batch, quarantining a migration whose events the database refuses.

The batch is written in one go, in a savepoint inside the caller's
transaction. When the database refuses it for its data (a data or an integrity
error: a NUL in text or jsonb, a value out of range, an event id used twice),
it is written again one migration at a time, and a refused migration one event
at a time: the first event refused quarantines its migration ("unstorable
event 5: <the database's error>"), the events before it stored, the later ones
held back. Anything else (the database away, a fault of ours) is raised: it is
not one migration's doing, and quarantining would hide it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import psycopg

from domain import MigrationState
from domain.events import Event
from projections import store
from projections.fold import EventKey, Folded, PhaseKey, PhaseRow, Row, fold_batch, quarantined
from projections.quarantine import stored_form, unstorable

log = logging.getLogger(__name__)
REFUSED = (psycopg.DataError, psycopg.IntegrityError)
Rows = Mapping[str, Row]
Phases = Mapping[PhaseKey, PhaseRow]
Stored = Mapping[EventKey, object]


async def write(
    conn: store.Conn, rows: Rows, phases: Phases, events: Sequence[Event], stored: Stored
) -> tuple[Folded, int]:
    """Fold `events` onto `rows` and `phases` and write them; return what was
    folded and the feed version of the last row written."""
    folded = fold_batch(rows, phases, events, stored)
    try:
        return folded, await _in_savepoint(conn, folded)
    except REFUSED as exc:
        log.warning(
            "the database refused a batch (%s); writing it a migration at a time", describe(exc)
        )
    out, feed = Folded(), 0
    for mine in _by_migration(events):
        folded, last = await _one_migration(conn, rows, phases, mine, stored)
        out.merge(folded)
        feed = max(feed, last)
    return out, feed


def describe(exc: psycopg.Error) -> str:
    """The database's error in a line, with its detail (never the data's context)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    detail = exc.diag.message_detail
    return f"{text} ({detail})" if detail else text


async def _in_savepoint(conn: store.Conn, folded: Folded) -> int:
    assert conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE, (
        "a batch is written inside the caller's transaction, with its offsets"
    )
    async with conn.transaction():
        return await store.write(conn, folded)


def _by_migration(events: Sequence[Event]) -> list[list[Event]]:
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.migration_id, []).append(event)
    return list(groups.values())


async def _one_migration(
    conn: store.Conn, rows: Rows, phases: Phases, mine: Sequence[Event], stored: Stored
) -> tuple[Folded, int]:
    folded = fold_batch(rows, phases, mine, stored)
    try:
        return folded, await _in_savepoint(conn, folded)
    except REFUSED:
        return await _one_event_at_a_time(conn, rows, phases, mine, stored)


async def _one_event_at_a_time(
    conn: store.Conn, rows: Rows, phases: Phases, mine: Sequence[Event], stored: Stored
) -> tuple[Folded, int]:
    rows, phases, stored = dict(rows), dict(phases), dict(stored)
    out, feed = Folded(), 0
    for i, event in enumerate(mine):
        step = fold_batch(rows, phases, [event], stored)
        try:
            feed = max(feed, await _in_savepoint(conn, step))
        except REFUSED as exc:
            step = _refused(rows, event, exc)
            feed = max(feed, await _in_savepoint(conn, step))
            step.held += mine[i + 1 :]
            out.merge(step)
            break
        out.merge(step)
        rows.update(step.rows)
        phases.update(step.phases)
        stored.update({(e.migration_id, e.sequence): stored_form(e) for e in step.history})
    return out, feed


def _refused(rows: Rows, event: Event, exc: psycopg.Error) -> Folded:
    mid = event.migration_id
    row = rows.get(mid) or Row(state=MigrationState(migration_id=mid))
    held = quarantined(row, unstorable(event.sequence, describe(exc)))
    return Folded(rows={mid: held}, held=[event], quarantined=[mid])

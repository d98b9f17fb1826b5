"""One batch of event records into the read model, inside the caller's
transaction: the records not yet applied are decoded, folded onto the rows
they touch (`projections.fold`), written (`projections.storing`: a migration
the database refuses is quarantined), NOTIFYed, and the partitions' stored
offsets advanced by compare-and-set. The projector and the rebuild both apply
their batches with this; the quarantines a batch makes commit with its rows
and its offsets, or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.events import Event
from projections import metrics, store, storing
from projections.fold import Folded, PhaseKey, PhaseRow, Row, phases_read
from projections.row_cache import RowCache
from schemas import RecordError, decode_event

log = logging.getLogger(__name__)
PROJECTION = "read-model"
Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


async def apply_batch(
    conn: store.Conn,
    topic: str,
    batch: Batch,
    *,
    notify: bool = True,
    cache: RowCache | None = None,
) -> Folded:
    """Apply the records of `batch` not yet applied and advance the stored
    offsets (compare-and-set), inside the caller's transaction. With `cache`,
    the transaction holds this one batch, and the caller has the cache
    remember the result once it commits."""
    stored = await store.stored_offsets(conn, PROJECTION, topic)
    batch = _unprojected(batch, stored)
    folded, feed = await fold_and_write(conn, decode(batch), cache)
    if notify:
        versions = {mid: row.state.version for mid, row in folded.rows.items()}
        await store.notify(conn, feed, versions)
    await _advance(conn, topic, batch, stored)
    return folded


async def fold_and_write(
    conn: store.Conn, events: Sequence[Event], cache: RowCache | None = None
) -> tuple[Folded, int]:
    """Fold `events` onto the stored rows (locked) and write what changes."""
    mids = sorted({e.migration_id for e in events})
    if cache is None:
        rows = await store.load_rows(conn, mids)
        phases = await store.load_phases(conn, *phases_read(events))
    else:
        rows, phases = await _load_cached(conn, mids, cache)
    repeats = [
        (e.migration_id, e.sequence)
        for e in events
        if (row := rows.get(e.migration_id)) is not None
        and row.quarantine is None
        and e.sequence <= row.state.version
    ]
    stored = await store.stored_events(conn, repeats) if repeats else {}
    folded, feed = await storing.write(conn, rows, phases, events, stored)
    _tell(folded)
    return folded, feed


async def _load_cached(
    conn: store.Conn, mids: Sequence[str], cache: RowCache
) -> tuple[dict[str, Row], dict[PhaseKey, PhaseRow]]:
    """The rows of `mids` (locked) and all their phase rows: those the cache
    holds at their stored feed version from it, the others from the database."""
    rows: dict[str, Row] = {}
    phases: dict[PhaseKey, PhaseRow] = {}
    missed: list[str] = []
    for mid, feed in (await store.lock_rows(conn, mids)).items():
        hit = cache.get(mid, feed)
        if hit is None:
            missed.append(mid)
            continue
        rows[mid] = hit.row
        for name, phase in hit.phases.items():
            phases[mid, name] = phase
    if missed:
        rows.update(await store.load_rows(conn, missed))
        phases.update(await store.load_phases(conn, missed))
    cache.begin(mids, phases)
    return rows, phases


def decode(batch: Batch) -> list[Event]:
    events: list[Event] = []
    for tp, records in batch.items():
        for record in records:
            try:
                events.append(decode_event(record.value, list(record.headers)))
            except RecordError as exc:
                metrics.UNDECODABLE.inc()
                log.error("undecodable event at %s[%s]: %s", tp.topic, record.offset, exc)
    return events


def _tell(folded: Folded) -> None:
    """Log and count what was not applied: repeats, quarantines, held events."""
    for event in folded.duplicates:
        metrics.DUPLICATES.inc()
        log.error("event %s (sequence %s) seen again; not applied twice", *_id(event))
    for mid in folded.quarantined:
        held = folded.rows[mid].quarantine
        assert held is not None, "a migration quarantined by the batch has its row in it"
        log.error(
            "migration %s quarantined at sequence %s: %s; its later events are held"
            " until `migrator projection refold %s`",
            *(mid, held.at_sequence, held.reason, mid),
        )
    metrics.HELD.inc(len(folded.held))


def _id(event: Event) -> tuple[str, int]:
    return event.event_id, event.sequence


async def _advance(conn: store.Conn, topic: str, batch: Batch, stored: dict[int, int]) -> None:
    """Every partition's stored offset past its last record, in one statement."""
    moves = {
        tp.partition: (stored.get(tp.partition), rs[-1].offset + 1) for tp, rs in batch.items()
    }
    await store.advance_offsets(conn, PROJECTION, topic, moves)


def _unprojected(batch: Batch, stored: dict[int, int]) -> Batch:
    """The records at or past each partition's stored offset."""
    kept = {
        tp: [r for r in records if r.offset >= stored.get(tp.partition, 0)]
        for tp, records in batch.items()
    }
    return {tp: records for tp, records in kept.items() if records}

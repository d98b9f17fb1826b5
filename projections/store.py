"""Reads and writes of the projector, a batch at a time.

Rows of the migrations a batch touches are loaded (locked) in one query,
folded in memory (`projections.fold`), and written back with one statement per
table: history by COPY, rows and phase rows by one upsert over arrays. Offsets
advance by compare-and-set. Every value travels as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import psycopg

from domain import (
    CutoverOptions,
    CutoverResult,
    MigrationSpec,
    MigrationState,
    Phase,
    PhaseStatus,
    SnapshotRef,
    Status,
)
from domain.events import Event
from domain.frozen import replace
from projections.exceptions import OffsetConflict
from projections.fold import Folded, PhaseKey, PhaseRow, Row
from projections.quarantine import Quarantine
from schemas.records import spec_from_plain, to_plain, to_plain_spec

Conn = psycopg.AsyncConnection[Any]
CHANNEL = "migration_changes"
NOTIFY_BYTES = 7000  # PostgreSQL refuses payloads of 8000 bytes or more
STATE_COLUMNS = (
    "status",
    "phase",
    "version",
    "spec",
    "run",
    "checkpoint",
    "rows_done",
    "rows_total",
    "score",
    "reason",
)
TIME_COLUMNS = ("created_at", "updated_at", "started_at", "finished_at")
QUARANTINE_COLUMNS = ("quarantine_reason", "quarantine_sequence", "quarantined_at")
# A live migration's (domain.live): its lag, position and cutover.
LIVE_COLUMNS = ("lag_bytes", "lag_seconds", "source_position", "cutover", "cutover_result")
LIVE_TYPES = ("bigint", "float8", "text", "jsonb", "jsonb")
# The enums by value: a dict lookup, several times cheaper than calling the enum.
STATUSES = {s.value: s for s in Status}
PHASES = {p.value: p for p in Phase}
PHASE_STATUSES = {s.value: s for s in PhaseStatus}
NOW = "now"  # PostgreSQL's input for the transaction's start time, as a timestamptz value
PHASE_COLUMNS = (
    "status",
    "run",
    "rows_done",
    "rows_total",
    "checkpoint",
    "score",
    "reason",
    "started_at",
    "finished_at",
    "updated_at",
    "bytes_done",
    "snapshot",
    "run_started_at",
    "run_rows_from",
    "run_bytes_from",
    "rows_per_second",
    "bytes_per_second",
    "eta_seconds",
    "eta_at",
)
PHASE_TYPES = (
    "text",
    "int",
    "bigint",
    "bigint",
    "text",
    "float8",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "bigint",
    "jsonb",
    "timestamptz",
    "bigint",
    "bigint",
    "float8",
    "float8",
    "float8",
    "timestamptz",
)
ROW_TYPES = (
    "text",
    "text",
    "bigint",
    "jsonb",
    "int",
    "text",
    "bigint",
    "bigint",
    "float8",
    "text",
    *(["timestamptz"] * 4),
    "bigint",
    "text",
    "bigint",
    "timestamptz",
    *LIVE_TYPES,
)


async def stored_offsets(conn: Conn, projection: str, topic: str) -> dict[int, int]:
    cur = await conn.execute(
        "SELECT partition, next_offset FROM projection_offsets WHERE projection=%s AND topic=%s",
        (projection, topic),
    )
    rows: list[tuple[int, int]] = await cur.fetchall()
    return {int(partition): int(offset) for partition, offset in rows}


async def advance_offset(
    conn: Conn, projection: str, topic: str, partition: int, old: int | None, new: int
) -> None:
    """Move a partition's stored offset from `old` to `new`, or refuse (fencing)."""
    await advance_offsets(conn, projection, topic, {partition: (old, new)})


async def advance_offsets(
    conn: Conn, projection: str, topic: str, moves: Mapping[int, tuple[int | None, int]]
) -> None:
    """Move each partition's stored offset from its old value to its new one
    (partition -> (old, new); old None: none stored yet), or refuse (fencing):
    the stored offsets in one statement, the first ones one by one."""
    for partition, (old, new) in moves.items():
        if old is None:
            cur = await conn.execute(
                "INSERT INTO projection_offsets VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (projection, topic, partition, new),
            )
            if cur.rowcount != 1:
                raise OffsetConflict(f"{topic}[{partition}]: an offset is stored already")
    stored = {p: move for p, move in moves.items() if move[0] is not None}
    if not stored:
        return
    keys = (projection, topic)
    cur = await conn.execute(
        "UPDATE projection_offsets o SET next_offset = k.new"
        " FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS k(p, old, new)"
        " WHERE o.projection = %s AND o.topic = %s AND o.partition = k.p"
        " AND o.next_offset = k.old RETURNING o.partition",
        (list(stored), [o for o, _ in stored.values()], [n for _, n in stored.values()], *keys),
    )
    moved = {int(p) for (p,) in await cur.fetchall()}
    for partition, (old, _) in sorted(stored.items()):
        if partition not in moved:
            raise OffsetConflict(f"{topic}[{partition}]: stored offset is no longer {old}")


async def load_rows(conn: Conn, migration_ids: Sequence[str]) -> dict[str, Row]:
    """The rows of these migrations, locked until the transaction ends."""
    columns = ("migration_id", *STATE_COLUMNS, *TIME_COLUMNS, *QUARANTINE_COLUMNS, *LIVE_COLUMNS)
    selected = ", ".join("spec::text" if c == "spec" else c for c in columns)
    cur = await conn.execute(
        f"SELECT {selected} FROM migrations"
        " WHERE migration_id = ANY(%s) ORDER BY migration_id FOR UPDATE",
        (list(migration_ids),),
    )
    return {r[0]: _row(r) for r in await cur.fetchall()}


async def lock_rows(conn: Conn, migration_ids: Sequence[str]) -> dict[str, int]:
    """The feed versions of these migrations' rows, locked until the transaction ends."""
    cur = await conn.execute(
        "SELECT migration_id, feed_version FROM migrations"
        " WHERE migration_id = ANY(%b::text[]) ORDER BY migration_id FOR UPDATE",
        (list(migration_ids),),
    )
    rows: list[tuple[str, int]] = await cur.fetchall()
    return dict(rows)


def _row(r: tuple[Any, ...]) -> Row:
    mid, status, phase, version, spec, run, checkpoint, done, total, score, reason = r[:11]
    state = MigrationState(
        migration_id=mid,
        status=STATUSES[status],
        version=version,
        spec=SPECS.parse(spec) if spec is not None else None,
        phase=PHASES[phase] if phase is not None else None,
        run=run,
        checkpoint=checkpoint,
        rows_done=done,
        rows_total=total,
        score=score,
        reason=reason,
    )
    created, updated, started, finished = map(_iso, r[11:15])
    lag_bytes, lag_seconds, position, cutover, result = r[18:23]
    live = replace(
        state,
        lag_bytes=lag_bytes,
        lag_seconds=lag_seconds,
        position=position,
        cutover=CutoverOptions(**cutover) if cutover is not None else None,
    )
    return Row(
        live,
        created,
        updated,
        started,
        finished,
        quarantine=_quarantine(*r[15:18]),
        cutover_result=CutoverResult(**result) if result is not None else None,
    )


def _quarantine(reason: str | None, sequence: int, since: datetime | None) -> Quarantine | None:
    if reason is None:
        return None
    return Quarantine(reason, int(sequence), _iso(since))


async def load_phases(
    conn: Conn, migration_ids: Sequence[str], keys: Sequence[PhaseKey] = ()
) -> dict[PhaseKey, PhaseRow]:
    """Every phase row of `migration_ids`, and the rows of `keys`."""
    columns = ", ".join(("migration_id", "phase", *PHASE_COLUMNS))
    cur = await conn.execute(
        f"SELECT {columns} FROM migration_phases WHERE migration_id = ANY(%s)"
        f" UNION ALL SELECT {columns} FROM migration_phases"
        " JOIN unnest(%s::text[], %s::text[]) AS k(mid, name)"
        " ON migration_id = k.mid AND phase = k.name",
        (list(migration_ids), [m for m, _ in keys], [p for _, p in keys]),
    )
    return {(r[0], r[1]): _phase_row(*r) for r in await cur.fetchall()}


def _phase_row(
    mid: str, phase: str, status: str, run: int, done: int, total: int, *rest: Any
) -> PhaseRow:
    checkpoint, score, reason, started, finished, updated, bytes_done, snapshot = rest[:8]
    run_started, rows_from, bytes_from, rows_rate, bytes_rate, eta, eta_at = rest[8:]
    return PhaseRow(
        migration_id=mid,
        phase=phase,
        status=PHASE_STATUSES[status],
        run=run,
        started_at=started.isoformat(),
        updated_at=updated.isoformat(),
        rows_done=done,
        rows_total=total,
        checkpoint=checkpoint,
        score=score,
        reason=reason,
        finished_at=_iso(finished),
        bytes_done=bytes_done,
        snapshot=SnapshotRef(**snapshot) if snapshot is not None else None,
        run_started_at=_iso(run_started),
        run_rows_from=rows_from,
        run_bytes_from=bytes_from,
        rows_per_second=rows_rate,
        bytes_per_second=bytes_rate,
        eta_seconds=eta,
        eta_at=_iso(eta_at),
    )


class SpecTexts:
    """Specs parsed from their stored JSON text, and the text written for a
    spec, remembered: a migration's row is read and written again for nearly
    every batch, and parsing and checking its spec each time was much of the
    cost of loading it. A spec is frozen, so one object serves every row that
    holds the same text. At most `size` of each are kept."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._parsed: dict[str, MigrationSpec] = {}
        self._texts: dict[int, tuple[MigrationSpec, str]] = {}  # by id(), the spec held

    def parse(self, text: str) -> MigrationSpec:
        spec = self._parsed.get(text)
        if spec is None:
            spec = spec_from_plain(json.loads(text))
            self._remember(spec, text)
            self._parsed[text] = spec
        return spec

    def text(self, spec: MigrationSpec) -> str:
        known = self._texts.get(id(spec))
        if known is not None and known[0] is spec:
            return known[1]
        text = json.dumps(to_plain_spec(spec))
        self._remember(spec, text)
        return text

    def _remember(self, spec: MigrationSpec, text: str) -> None:
        if len(self._texts) >= self.size or len(self._parsed) >= self.size:
            self._texts.clear()
            self._parsed.clear()
        self._texts[id(spec)] = (spec, text)


SPECS = SpecTexts()


async def stored_events(
    conn: Conn, keys: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The stored payloads of these (migration_id, sequence) pairs."""
    pairs = list(keys)
    mids, seqs = [m for m, _ in pairs], [s for _, s in pairs]
    cur = await conn.execute(
        "SELECT e.migration_id, e.sequence, e.payload FROM migration_events e"
        " JOIN unnest(%s::text[], %s::bigint[]) AS k(mid, seq)"
        " ON e.migration_id = k.mid AND e.sequence = k.seq",
        (mids, seqs),
    )
    return {(m, int(s)): p for m, s, p in await cur.fetchall()}


async def write(conn: Conn, folded: Folded) -> int:
    """Write what a batch changed; return the feed version of its last row."""
    await _insert_history(conn, folded.history)
    feed = await _next_feed_versions(conn, len(folded.rows))
    await _upsert_rows(conn, folded.rows.values(), feed)
    await _upsert_phases(conn, folded.phases.values())
    folded.feeds = {mid: feed + i for i, mid in enumerate(folded.rows)}
    return feed + len(folded.rows) - 1 if folded.rows else feed - 1


async def _insert_history(conn: Conn, events: Sequence[Event]) -> None:
    columns = "migration_id, sequence, event_id, type, occurred_at, causation_id, payload"
    async with (
        conn.cursor() as cur,
        cur.copy(f"COPY migration_events ({columns}) FROM STDIN") as cp,
    ):
        for e in events:
            payload = json.dumps(to_plain(e))
            row = (e.migration_id, e.sequence, e.event_id, e.type, e.occurred_at, e.causation_id)
            await cp.write_row((*row, payload))


async def _next_feed_versions(conn: Conn, count: int) -> int:
    """Reserve `count` feed versions; return the first. The row stays locked
    until commit, so versions become visible in the order they were given."""
    cur = await conn.execute(
        "UPDATE feed_version SET version = version + %s WHERE id = 1 RETURNING version", (count,)
    )
    row = await cur.fetchone()
    assert row is not None, "feed_version has its one row from the SQL migration"
    return int(row[0]) - count + 1


async def _upsert_rows(conn: Conn, rows: Iterable[Row], first_feed: int) -> None:
    columns = (
        "migration_id",
        *STATE_COLUMNS,
        *TIME_COLUMNS,
        "feed_version",
        *QUARANTINE_COLUMNS,
        *LIVE_COLUMNS,
    )
    data = [_row_values(row, first_feed + i) for i, row in enumerate(rows)]
    kept = ("migration_id", "created_at")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in kept)
    await conn.execute(
        f"INSERT INTO migrations ({', '.join(columns)}) {_unnest(('text', *ROW_TYPES))}"
        f" ON CONFLICT (migration_id) DO UPDATE SET {updates}",
        _columns_of(data, len(columns)),
    )


def _row_values(row: Row, feed: int) -> tuple[Any, ...]:
    s = row.state
    spec = SPECS.text(s.spec) if s.spec else None
    state = (s.status.value, s.phase, s.version, spec, s.run, s.checkpoint)
    rest = (s.rows_done, s.rows_total, s.score, s.reason)
    # only a row quarantined at its first event lacks the times of one
    times = (row.created_at or NOW, row.updated_at or NOW, row.started_at, row.finished_at)
    q = row.quarantine
    held = (q.reason, q.at_sequence, q.since or NOW) if q else (None, None, None)
    return (s.migration_id, *state, *rest, *times, feed, *held, *_live_values(row))


def _live_values(row: Row) -> tuple[Any, ...]:
    s, result = row.state, row.cutover_result
    cutover = json.dumps(asdict(s.cutover)) if s.cutover is not None else None
    ended = json.dumps(asdict(result)) if result is not None else None
    return (s.lag_bytes, s.lag_seconds, s.position, cutover, ended)


async def _upsert_phases(conn: Conn, phases: Iterable[PhaseRow]) -> None:
    columns = ("migration_id", "phase", *PHASE_COLUMNS)
    data = [_phase_values(p, columns) for p in phases]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in PHASE_COLUMNS)
    await conn.execute(
        f"INSERT INTO migration_phases ({', '.join(columns)})"
        f" {_unnest(('text', 'text', *PHASE_TYPES))}"
        f" ON CONFLICT (migration_id, phase) DO UPDATE SET {updates}",
        _columns_of(data, len(columns)),
    )


def _phase_values(phase: PhaseRow, columns: Sequence[str]) -> tuple[Any, ...]:
    snapshot = phase.snapshot
    text = json.dumps(asdict(snapshot)) if snapshot is not None else None
    return tuple(text if c == "snapshot" else getattr(phase, c) for c in columns)


def _unnest(types: Sequence[str]) -> str:
    """`SELECT * FROM unnest(%b::t1[], ...)`: many rows in one parameterised
    statement. The arrays travel in binary: quoting each element for the text
    form took most of the time of writing a batch."""
    return "SELECT * FROM unnest(" + ", ".join(f"%b::{t}[]" for t in types) + ")"


def _columns_of(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[r[i] for r in rows] for i in range(width)]


async def notify(conn: Conn, feed: int, versions: dict[str, int]) -> None:
    """Signal the changes at commit (NOTIFY is transactional), in payloads
    small enough for PostgreSQL: {"feed": feed version, "m": {migration_id: version}}."""
    for chunk in _chunks(versions):
        payload = json.dumps({"feed": feed, "m": chunk}, separators=(",", ":"))
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def _chunks(versions: dict[str, int]) -> Iterable[dict[str, Any]]:
    """Chunks of {migration_id: version}; an id too long for any payload makes
    a chunk {"*": 0} that tells listeners to look at everything."""
    chunk: dict[str, Any] = {}
    size = 0
    for mid, version in versions.items():
        entry = len(mid.encode()) + 30
        if entry > NOTIFY_BYTES:
            yield {"*": 0}
            continue
        if chunk and size + entry > NOTIFY_BYTES:
            yield chunk
            chunk, size = {}, 0
        chunk[mid] = version
        size += entry
    if chunk:
        yield chunk


async def count_quarantined(conn: Conn) -> int:
    cur = await conn.execute("SELECT count(*) FROM migrations WHERE quarantine_reason IS NOT NULL")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def forget(conn: Conn, migration_id: str) -> None:
    """Delete a migration's rows, history and phases (to fold it again from scratch)."""
    for table in ("migration_events", "migration_phases", "migrations"):
        await conn.execute(f"DELETE FROM {table} WHERE migration_id = %s".encode(), (migration_id,))


async def mark_escaped(conn: Conn, migration_id: str, sequences: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE migrations SET escaped_sequences = %s::bigint[] WHERE migration_id = %s",
        (list(sequences), migration_id),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

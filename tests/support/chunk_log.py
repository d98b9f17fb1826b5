"""What the data plane records of a migration's copy in the target database
(`migrator_state`): the extract's checkpoints (each naming the snapshot it
reads in), one `batches` row per committed chunk, and one `chunk_runs` row
per chunk attempt (written as the attempt starts); and which attempts were
redone, laid against the kills that cut them short."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise
from typing import Any

import psycopg

STATE = "migrator_state"
EXTRACT = "extract"


@dataclass(frozen=True)
class Attempt:
    """One attempt at one chunk; `redone_at`: when the chunk's next attempt
    started (None for its last)."""

    slice: int
    worker: str
    started_at: datetime
    redone_at: datetime | None = None


def _rows(url: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of `query`; none while the state tables are not there yet."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            return conn.execute(query.encode(), params).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def clock(url: str) -> datetime:
    """The database server's time now (the clock the chunk log is written in)."""
    ((now,),) = _rows(url, "SELECT clock_timestamp()")
    return now  # type: ignore[no-any-return]


def extract_checkpoints(url: str, migration_id: str) -> list[tuple[int, dict[str, Any], bool]]:
    """(slice, position, done) of each extract checkpoint."""
    return _rows(
        url,
        f"SELECT slice, position, done FROM {STATE}.checkpoints"
        " WHERE migration_id = %s AND phase = %s ORDER BY slice",
        (migration_id, EXTRACT),
    )


def reconciled(url: str, migration_id: str) -> dict[str, Any] | None:
    """The figures reconcile recorded once it passed (None: it has not)."""
    found = _rows(
        url,
        f"SELECT result FROM {STATE}.checkpoints"
        " WHERE migration_id = %s AND phase = 'reconcile' AND done",
        (migration_id,),
    )
    return found[0][0] if found else None


def extract_done(url: str, migration_id: str) -> bool:
    found = extract_checkpoints(url, migration_id)
    return bool(found) and all(done for _, _, done in found)


def committed_since(url: str, migration_id: str, since: datetime) -> int:
    """Extract chunks committed after `since`."""
    ((n,),) = _rows(
        url,
        f"SELECT count(*) FROM {STATE}.batches"
        " WHERE migration_id = %s AND phase = %s AND committed_at > %s",
        (migration_id, EXTRACT, since),
    ) or [(0,)]
    return int(n)


@dataclass(frozen=True)
class Commits:
    """Extract's committed chunks: how often each slice committed, by whom,
    the rows they hold, and when the last one committed."""

    per_slice: Counter[int]
    per_worker: Counter[str]
    rows: int
    last: datetime | None


def commits(url: str, migration_id: str) -> Commits:
    found = _rows(
        url,
        f"SELECT slice, worker, rows, committed_at FROM {STATE}.batches"
        " WHERE migration_id = %s AND phase = %s",
        (migration_id, EXTRACT),
    )
    return Commits(
        Counter(s for s, _, _, _ in found),
        Counter(w for _, w, _, _ in found),
        sum(r for _, _, r, _ in found),
        max((at for _, _, _, at in found), default=None),
    )


def attempts(url: str, migration_id: str) -> list[Attempt]:
    """Every extract chunk attempt, each knowing when it was redone."""
    found = _rows(
        url,
        f"SELECT slice, worker, started_at FROM {STATE}.chunk_runs"
        " WHERE migration_id = %s AND phase = %s ORDER BY slice, started_at",
        (migration_id, EXTRACT),
    )
    runs = [Attempt(*row) for row in found]
    return [
        replace(a, redone_at=n.started_at) if n.slice == a.slice else a for a, n in pairwise(runs)
    ] + runs[-1:]


def redone_by_kill(
    found: list[Attempt], kills: Sequence[datetime]
) -> dict[int | None, list[Attempt]]:
    """The redone attempts by the kill (its index) that came between the
    attempt's start and its redo; None: redone with no kill between."""
    by_kill: dict[int | None, list[Attempt]] = {}
    for a in found:
        if a.redone_at is None:
            continue
        between = [i for i, at in enumerate(kills) if a.started_at <= at <= a.redone_at]
        by_kill.setdefault(between[-1] if between else None, []).append(a)
    return by_kill

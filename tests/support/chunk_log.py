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


def commits(url: str, migration_id: str) -> tuple[Counter[int], int, datetime | None]:
    """Extract's commits per slice, the rows they hold, and the last one's time."""
    found = _rows(
        url,
        f"SELECT slice, rows, committed_at FROM {STATE}.batches"
        " WHERE migration_id = %s AND phase = %s",
        (migration_id, EXTRACT),
    )
    per_slice = Counter(s for s, _, _ in found)
    return per_slice, sum(r for _, r, _ in found), max((at for _, _, at in found), default=None)


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

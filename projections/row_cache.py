"""The rows a projector wrote, remembered between its batches (pure, no I/O).

A running migration's row is read and written again for nearly every batch;
loading it (and its phase rows) back from the database and building the
objects again was much of the cost of a batch. The cache keeps each row as it
was committed (as loading it would give it, `_as_stored`), with its phase
rows and the feed version it was written with.

It is trusted only when the database agrees: every row write takes a fresh
feed version from one counter (`store.write`), and so does every other writer
(a refold writes the row again; a rebuild's swap renumbers every row above
the live feed). A batch locks its rows reading only their feed versions
(`store.lock_rows`); a row whose stored version is the remembered one is
taken from here, any other is loaded in full. A row deleted meanwhile is
found missing and forgotten.

Entries are added only after the batch's transaction commits (`remember`):
a batch rolled back leaves the cache as the database is, with the versions
it holds. At most `size` migrations are kept; the least recently used go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec
from msgspec import Struct

from domain import frozen
from projections.fold import Folded, PhaseKey, PhaseRow, Row

ROWS_KEPT = 20_000


class Cached(Struct, frozen=True):
    """A migration's row as committed, its feed version, and all its phase rows."""

    feed: int
    row: Row
    phases: Mapping[str, PhaseRow]


class RowCache:
    def __init__(self, size: int = ROWS_KEPT) -> None:
        self.size = size
        self._rows: dict[str, Cached] = {}
        self._base: dict[str, dict[str, PhaseRow]] = {}  # the batch in flight's phase rows
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, migration_id: str, feed: int) -> Cached | None:
        """The row of `migration_id` if it is still the one stored at `feed`."""
        cached = self._rows.pop(migration_id, None)
        if cached is None or cached.feed != feed:
            self.misses += 1
            return None
        self._rows[migration_id] = cached  # the most recently used last
        self.hits += 1
        return cached

    def begin(self, migration_ids: Iterable[str], phases: Mapping[PhaseKey, PhaseRow]) -> None:
        """Note the complete phase rows a batch starts from: `phases` holds
        every stored phase row of `migration_ids`."""
        self._base = {mid: {} for mid in migration_ids}
        for (mid, name), phase in phases.items():
            self._base[mid][name] = phase

    def remember(self, folded: Folded) -> None:
        """Keep the rows of a batch whose transaction committed (`begin` was
        called for it); a row written without a known feed version is forgotten."""
        changed: dict[str, dict[str, PhaseRow]] = {}
        for (mid, name), phase in folded.phases.items():
            changed.setdefault(mid, {})[name] = phase
        for mid, row in folded.rows.items():
            self._rows.pop(mid, None)
            feed, base = folded.feeds.get(mid), self._base.get(mid)
            if feed is None or base is None:
                continue
            self._rows[mid] = Cached(feed, _as_stored(row), {**base, **changed.get(mid, {})})
        self._base = {}
        while len(self._rows) > self.size:
            del self._rows[next(iter(self._rows))]

    def clear(self) -> None:
        self._rows.clear()
        self._base = {}


def _as_stored(row: Row) -> Row:
    """`row` as loading it would give it: without the ids of the commands and
    results its migration handled (the orchestrator's, not the read model's;
    kept, they would grow with every event of a long phase)."""
    state = row.state
    if not state.seen and not state.seen_results:
        return row
    return msgspec.structs.replace(
        row, state=frozen.replace(state, seen=frozenset(), seen_results=frozenset())
    )

"""The projector's rows kept between batches: taken only at the feed version
they were written with, kept as loading them would give them, bounded."""

from __future__ import annotations

from domain import MigrationState, PhaseStatus
from projections.fold import Folded, PhaseRow, Row
from projections.row_cache import RowCache


def row(mid: str, version: int = 1) -> Row:
    state = MigrationState(
        migration_id=mid, version=version, seen=frozenset({"c-1"}), seen_results=frozenset({"r"})
    )
    return Row(state=state, created_at="t0", updated_at="t0")


def phase(mid: str, name: str, done: int = 0) -> PhaseRow:
    return PhaseRow(mid, name, PhaseStatus.RUNNING, 1, "t0", "t0", rows_done=done)


def written(rows: dict[str, Row], feeds: dict[str, int], *phases: PhaseRow) -> Folded:
    return Folded(rows=rows, phases={(p.migration_id, p.phase): p for p in phases}, feeds=feeds)


def test_a_row_is_taken_at_its_feed_version_with_all_its_phase_rows() -> None:
    cache = RowCache()
    cache.begin(["m-1"], {("m-1", "extract"): phase("m-1", "extract", 100)})
    cache.remember(written({"m-1": row("m-1")}, {"m-1": 7}, phase("m-1", "transform")))

    hit = cache.get("m-1", 7)

    assert hit is not None and hit.feed == 7
    assert set(hit.phases) == {"extract", "transform"}
    assert hit.phases["extract"].rows_done == 100
    assert hit.row.state.seen == frozenset() and hit.row.state.seen_results == frozenset()
    assert hit.row.state.version == 1


def test_a_row_written_since_at_another_version_is_forgotten() -> None:
    cache = RowCache()
    cache.begin(["m-1"], {})
    cache.remember(written({"m-1": row("m-1")}, {"m-1": 7}))

    assert cache.get("m-1", 8) is None
    assert cache.get("m-1", 7) is None  # gone, not taken back
    assert (cache.hits, cache.misses) == (0, 2)


def test_a_row_without_a_known_version_or_start_is_not_kept() -> None:
    cache = RowCache()
    cache.remember(written({"m-1": row("m-1")}, {"m-1": 7}))  # no begin
    cache.begin(["m-2"], {})
    cache.remember(written({"m-2": row("m-2")}, {}))  # not written

    assert len(cache) == 0


def test_the_least_recently_used_rows_go_first() -> None:
    cache = RowCache(size=2)
    for n, mid in enumerate(["m-1", "m-2"]):
        cache.begin([mid], {})
        cache.remember(written({mid: row(mid)}, {mid: n}))
    assert cache.get("m-1", 0) is not None  # m-1 used again: m-2 is the oldest

    cache.begin(["m-3"], {})
    cache.remember(written({"m-3": row("m-3")}, {"m-3": 2}))

    assert len(cache) == 2
    assert cache.get("m-2", 1) is None
    assert cache.get("m-1", 0) is not None and cache.get("m-3", 2) is not None

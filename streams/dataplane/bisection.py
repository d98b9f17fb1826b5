"""Checksum bisection, the pure part: how a key range is cut, when two
sides' figures of a range agree, and what a key-by-key comparison finds.

A range is half-open over the first key column's values, `lo <= k < hi`
(None: unbounded). Both sides sum their rows' hashes per segment of the
range; a segment whose count or sum differs is cut again, until it holds
few enough rows to compare key by key (or cannot be cut: one value of the
first key column, or a type without an ordering). Equal sums are taken as
equal rows: a 64-bit hash per row, summed, as reconcile takes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FACTOR = 16  # segments a differing range is cut into
LEAF_ROWS = 4096  # a range with no more rows than this on either side is compared key by key
SAMPLE_KEYS = 10  # keys of each kind a report shows
RANGES_KEPT = 64  # ranges a report lists (the first level's, then the differing ones)

Key = tuple[str, ...]  # a row's key: each key column's value as text


@dataclass(frozen=True)
class Range:
    lo: str | None  # the first key column's lowest value in the range (None: no bound)
    hi: str | None  # the first value past the range (None: no bound)
    depth: int = 0


@dataclass(frozen=True)
class Sums:
    """One side's figures of a range: its rows, and the sum of their hashes."""

    rows: int = 0
    checksum: int = 0


NOTHING = Sums()


def integer_thresholds(low: int, high: int, parts: int = FACTOR) -> list[str]:
    """Cuts splitting keys `low`..`high` into up to `parts` segments of equal
    width: the first value of every segment but the first."""
    width = max(1, -(-(high - low + 1) // parts))
    return [str(v) for v in range(low + width, high + 1, width)]


@dataclass(frozen=True)
class Cuts:
    """Where a range is cut: `values` ascending; for integer keys cut at equal
    widths, the lowest key and the width too (a row's segment is then
    `(k - low) / width`, cheaper than a search of the cuts)."""

    values: list[str]
    low: int | None = None
    width: int = 0

    def __bool__(self) -> bool:
        return bool(self.values)


def integer_cuts(low: int, high: int, parts: int = FACTOR) -> Cuts:
    width = max(1, -(-(high - low + 1) // parts))
    return Cuts(integer_thresholds(low, high, parts), low, width)


def segments(whole: Range, thresholds: Sequence[str]) -> list[Range]:
    """`whole` cut at `thresholds` (ascending, inside it): segment i holds the
    keys `width_bucket` puts in bucket i."""
    bounds = [whole.lo, *thresholds, whole.hi]
    return [Range(bounds[i], bounds[i + 1], whole.depth + 1) for i in range(len(bounds) - 1)]


def by_segment(found: Iterable[tuple[int, int, str]], count: int) -> list[Sums]:
    """Per segment, its figures from `(bucket, rows, checksum)` rows (a
    segment without rows has none)."""
    sums = [NOTHING] * count
    for bucket, rows, checksum in found:
        sums[bucket] = Sums(int(rows), int(checksum))
    return sums


def is_leaf(source: Sums, target: Sums, leaf_rows: int = LEAF_ROWS) -> bool:
    return max(source.rows, target.rows) <= leaf_rows


@dataclass(frozen=True)
class KeyDiff:
    missing: list[Key]
    extra: list[Key]
    different: list[Key]


def compare_rows(source: Mapping[Key, int], target: Mapping[Key, int]) -> KeyDiff:
    """Keys by hash on both sides of one range: what is missing from the
    target, extra in it, and different (each sorted)."""
    return KeyDiff(
        missing=sorted(source.keys() - target.keys()),
        extra=sorted(target.keys() - source.keys()),
        different=sorted(k for k in source.keys() & target.keys() if source[k] != target[k]),
    )


def key_label(key: Key) -> str:
    """A key as a person reads it: its one value, or `(a,b)` for a composite key."""
    return key[0] if len(key) == 1 else "(" + ",".join(key) + ")"


@dataclass
class Found:
    """What a bisection found so far: every differing key, the ranges it
    compared (bounded) and how many."""

    missing: list[Key] = field(default_factory=list)
    extra: list[Key] = field(default_factory=list)
    different: list[Key] = field(default_factory=list)
    ranges: list[dict[str, Any]] = field(default_factory=list)
    ranges_compared: int = 0
    source: Sums = NOTHING
    target: Sums = NOTHING

    def add(self, keys: KeyDiff) -> None:
        self.missing += keys.missing
        self.extra += keys.extra
        self.different += keys.different

    def compared(self, where: Range, source: Sums, target: Sums) -> None:
        """Note one range compared: kept when the report has room (the first
        level's ranges come first), always counted."""
        self.ranges_compared += 1
        same = source == target
        if len(self.ranges) < RANGES_KEPT and (where.depth <= 1 or not same):
            self.ranges.append(range_json(where, source, target))

    def counts(self) -> dict[str, int]:
        return {
            "missing": len(self.missing),
            "extra": len(self.extra),
            "different": len(self.different),
        }

    def samples(self, limit: int = SAMPLE_KEYS) -> dict[str, list[str]]:
        return {
            "missing": [key_label(k) for k in self.missing[:limit]],
            "extra": [key_label(k) for k in self.extra[:limit]],
            "different": [key_label(k) for k in self.different[:limit]],
        }


def range_json(where: Range, source: Sums, target: Sums) -> dict[str, Any]:
    return {
        "lo": where.lo,
        "hi": where.hi,
        "depth": where.depth,
        "source_rows": source.rows,
        "target_rows": target.rows,
        "source_checksum": str(source.checksum),
        "target_checksum": str(target.checksum),
        "same": source == target,
    }

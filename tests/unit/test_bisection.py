"""The pure rules of checksum bisection: how ranges are cut, how segment
figures line up, when a range is compared key by key, what a key-by-key
comparison finds, and what a report keeps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.dataplane.bisection import (
    RANGES_KEPT,
    SAMPLE_KEYS,
    Found,
    KeyDiff,
    Range,
    Sums,
    by_segment,
    compare_rows,
    integer_thresholds,
    is_leaf,
    key_label,
    segments,
)


def test_integer_cuts_are_of_equal_width_and_above_the_lowest_key() -> None:
    assert integer_thresholds(1, 100, 4) == ["26", "51", "76"]
    assert integer_thresholds(-5, 4, 5) == ["-3", "-1", "1", "3"]


def test_a_range_of_one_key_cannot_be_cut() -> None:
    assert integer_thresholds(7, 7, 16) == []


@given(st.integers(-(10**12), 10**12), st.integers(0, 10**6), st.integers(2, 64))
def test_integer_cuts_split_every_range_into_smaller_ones(low: int, span: int, parts: int) -> None:
    cuts = [int(c) for c in integer_thresholds(low, low + span, parts)]

    assert cuts == sorted(set(cuts))
    assert all(low < c <= low + span for c in cuts)
    assert len(cuts) + 1 <= parts
    assert span == 0 or cuts  # more than one key: cut at least once


def test_segments_keep_the_ranges_ends_and_go_one_level_deeper() -> None:
    whole = Range(None, "100", depth=2)

    assert segments(whole, ["10", "50"]) == [
        Range(None, "10", 3),
        Range("10", "50", 3),
        Range("50", "100", 3),
    ]


def test_segment_figures_line_up_by_bucket_and_a_segment_without_rows_has_none() -> None:
    found = [(2, 5, "-17"), (0, 1, "99")]

    assert by_segment(found, 4) == [Sums(1, 99), Sums(), Sums(5, -17), Sums()]


def test_a_range_is_compared_key_by_key_when_both_sides_are_small() -> None:
    assert is_leaf(Sums(10, 1), Sums(12, 2), leaf_rows=12)
    assert not is_leaf(Sums(10, 1), Sums(13, 2), leaf_rows=12)


def test_key_by_key_finds_missing_extra_and_different_keys() -> None:
    source = {("1",): 10, ("2",): 20, ("3",): 30}
    target = {("2",): 20, ("3",): 31, ("4",): 40}

    assert compare_rows(source, target) == KeyDiff([("1",)], [("4",)], [("3",)])


def test_a_composite_key_reads_as_a_row() -> None:
    assert key_label(("7",)) == "7"
    assert key_label(("acme", "7")) == "(acme,7)"


def test_a_report_keeps_a_bounded_sample_of_each_kind() -> None:
    found = Found()
    found.add(KeyDiff([(str(k),) for k in range(50)], [("x",)], []))

    samples = found.samples()

    assert len(samples["missing"]) == SAMPLE_KEYS and samples["missing"][0] == "0"
    assert samples["extra"] == ["x"] and samples["different"] == []
    assert found.counts() == {"missing": 50, "extra": 1, "different": 0}


def test_a_report_lists_the_first_levels_ranges_then_only_differing_ones() -> None:
    found = Found()
    for i in range(3):
        found.compared(Range(str(i), str(i + 1), 1), Sums(1, 1), Sums(1, 1))
    found.compared(Range("0", "1", 2), Sums(1, 1), Sums(1, 1))  # deeper and equal: counted only
    found.compared(Range("1", "2", 2), Sums(1, 1), Sums(1, 2))
    for _ in range(2 * RANGES_KEPT):
        found.compared(Range(None, None, 3), Sums(), Sums(1, 1))

    assert found.ranges_compared == 5 + 2 * RANGES_KEPT
    assert len(found.ranges) == RANGES_KEPT
    assert [r["depth"] for r in found.ranges[:4]] == [1, 1, 1, 2]
    assert found.ranges[3]["same"] is False and found.ranges[3]["target_checksum"] == "2"

"""A phase's progress as its slices (chunks) count it: rows, bytes, the
snapshot it reads in, and a checkpoint text that stays small however many
chunks there are."""

from __future__ import annotations

import json
from typing import Any

from domain import SnapshotRef
from streams.dataplane.checkpoints import Checkpoint
from streams.dataplane.context import progress_of

SNAPSHOT = {
    "id": "00000003-1B-1",
    "taken_at": "2026-03-01 12:00:00+00",
    "xids": "7:9:",
    "lsn": "0/16",
}


def chunk(
    slice_: int, rows: int = 0, total: int = 0, done: bool = False, **position: Any
) -> Checkpoint:
    return Checkpoint(
        "m-1",
        "extract",
        slice_,
        position=position,
        rows_done=rows,
        rows_total=total,
        batches=1 if rows else 0,
        done=done,
    )


def test_rows_and_bytes_are_summed_over_the_slices() -> None:
    slices = [chunk(0, 10, 10, True, bytes=1000), chunk(1, 5, 10, bytes=480), chunk(2, 0, 10)]

    progress = progress_of(slices)

    assert (progress.rows_done, progress.rows_total, progress.bytes_done) == (15, 30, 1480)


def test_the_snapshot_a_slice_names_is_the_progress_snapshot() -> None:
    one = progress_of([chunk(0, 3, 9, after="3", snapshot=SNAPSHOT, bytes=70)])

    assert one.snapshot == SnapshotRef(
        id="00000003-1B-1", taken_at="2026-03-01 12:00:00+00", lsn="0/16"
    )
    assert json.loads(one.checkpoint)["snapshot"] == SNAPSHOT  # one slice: its position, as before
    assert progress_of([chunk(0, 3, 9, after="3")]).snapshot is None


def test_a_slice_without_bytes_counts_none() -> None:
    progress = progress_of([chunk(0, 3, 9, after="3"), chunk(1, 2, 9, bytes=None)])

    assert progress.bytes_done == 0


def test_many_chunks_are_summarised_in_a_few_figures_of_bounded_size() -> None:
    few = [chunk(0, 10, 10, True, bytes=100), chunk(1, 4, 10, bytes=40), chunk(2, 0, 10)]
    many = [chunk(i, 1000, 1000, i < 9000, bytes=10**6, after=str(i) * 20) for i in range(10_000)]

    summary = json.loads(progress_of(few).checkpoint)
    big = progress_of(many).checkpoint

    assert summary == {"chunks": 3, "done": 1, "in_flight": 1, "rows": 14, "bytes": 140}
    assert json.loads(big) == {
        "chunks": 10_000,
        "done": 9000,
        "in_flight": 1000,
        "rows": 10_000_000,
        "bytes": 10**10,
    }
    assert len(big) < 100

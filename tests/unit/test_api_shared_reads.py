"""Reads asked for at about the same time share one fetch (api.shared_reads)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from api.shared_reads import SharedReads


class Table:
    """A fetch that answers from a dict, held until `release` is set, and records its calls."""

    def __init__(self, rows: dict[str, int]) -> None:
        self.rows, self.calls = rows, list[list[str]]()
        self.release = asyncio.Event()

    async def fetch(self, keys: Sequence[str]) -> dict[str, int]:
        self.calls.append(list(keys))
        await self.release.wait()
        return {k: self.rows[k] for k in keys if k in self.rows}


async def asked(reads: SharedReads[str, int], *keys: str) -> list[asyncio.Task[int | None]]:
    tasks = [asyncio.create_task(reads.get(k)) for k in keys]
    await asyncio.sleep(0)  # each has asked
    return tasks


async def test_keys_asked_while_a_read_runs_share_the_next_one() -> None:
    table = Table({"a": 1, "b": 2, "c": 3})
    reads = SharedReads(table.fetch, concurrency=1)

    first = await asked(reads, "a")
    meanwhile = await asked(reads, "b", "c", "missing", "b")
    waiting = reads.waiting
    table.release.set()
    answers = await asyncio.gather(*first, *meanwhile)

    assert table.calls == [["a"], ["b", "c", "missing"]]  # "b" once, for both askers
    assert waiting == 3
    assert answers == [1, 2, 3, None, 2]


async def test_an_idle_reader_reads_a_lone_key_at_once_and_batches_are_bounded() -> None:
    table = Table({str(i): i for i in range(5)})
    table.release.set()
    reads = SharedReads(table.fetch, concurrency=1, batch_max=2)

    assert await reads.get("0") == 0
    table.release.clear()
    tasks = await asked(reads, "1")
    tasks += await asked(reads, "2", "3", "4")
    table.release.set()

    assert await asyncio.gather(*tasks) == [1, 2, 3, 4]
    assert table.calls == [["0"], ["1"], ["2", "3"], ["4"]]


async def test_reads_run_side_by_side_up_to_the_concurrency() -> None:
    table = Table({"a": 1, "b": 2, "c": 3})
    reads = SharedReads(table.fetch, concurrency=2)

    tasks = [*await asked(reads, "a"), *await asked(reads, "b"), *await asked(reads, "c")]
    calls_while_held = [list(c) for c in table.calls]
    table.release.set()

    assert await asyncio.gather(*tasks) == [1, 2, 3]
    assert calls_while_held == [["a"], ["b"]]  # "c" waited for one of them to end
    assert table.calls == [["a"], ["b"], ["c"]]


async def test_a_failed_read_fails_its_askers_only_and_the_next_one_reads_again() -> None:
    calls = 0

    async def fetch(keys: Sequence[str]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return {k: 7 for k in keys}

    reads = SharedReads(fetch)

    with pytest.raises(ConnectionError, match="database away"):
        await reads.get("a")
    assert await reads.get("a") == 7


async def test_an_asker_that_left_does_not_stop_the_others() -> None:
    table = Table({"a": 1})
    reads = SharedReads(table.fetch, concurrency=1)

    gone, stays = await asked(reads, "a", "a")
    gone.cancel()
    table.release.set()

    assert await stays == 1
    with pytest.raises(asyncio.CancelledError):
        await gone

"""Batch boundaries change nothing in the read model: a history folded one
event per transaction (each batch reads the rows the one before wrote) gives
the rows and phase rows the whole history gives in one batch. Pauses, resumes
from a checkpoint and cancels read phase rows that earlier batches wrote."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from domain import events as ev
from domain.events import Event
from projections.batch import fold_and_write
from projections.row_cache import RowCache
from projections.schema import apply_schema
from projections.store import forget
from tests.support.read_side import SPEC

pytestmark = pytest.mark.integration
AT = "2026-01-01T00:00:00+00:00"


def history(mid: str) -> list[Event]:
    """Paused and resumed from its checkpoint in extract, paused between
    phases, then cancelled in transform."""
    steps: list[Callable[..., Event]] = [
        lambda **e: ev.MigrationStarted(**e, spec=SPEC),
        lambda **e: ev.PhaseRequested(**e, phase="extract", run=1),
        lambda **e: ev.PhaseProgressRecorded(
            **e, phase="extract", rows_done=10, rows_total=100, checkpoint="10"
        ),
        lambda **e: ev.MigrationPausing(**e, reason="night"),
        lambda **e: ev.MigrationPaused(**e, checkpoint="10"),
        ev.MigrationResumed,
        lambda **e: ev.PhaseRequested(**e, phase="extract", run=2, checkpoint="10"),
        lambda **e: ev.PhaseCompleted(**e, phase="extract", rows_done=100, score=1.0),
        lambda **e: ev.MigrationPausing(**e, reason="again"),
        ev.MigrationPaused,
        ev.MigrationResumed,
        lambda **e: ev.PhaseRequested(**e, phase="transform", run=3),
        lambda **e: ev.PhaseFailed(**e, phase="transform", reason="boom", checkpoint="7"),
        ev.MigrationRetried,
        lambda **e: ev.PhaseRequested(**e, phase="transform", run=4, checkpoint="7"),
        lambda **e: ev.MigrationCancelled(**e, reason="enough"),
    ]
    return [
        make(
            event_id=f"{mid}:{n}",
            migration_id=mid,
            sequence=n,
            occurred_at=AT,
            causation_id=f"c-{mid}-{n}",
        )
        for n, make in enumerate(steps, start=1)
    ]


async def tables(conn: psycopg.AsyncConnection[Any], mid: str) -> tuple[object, object]:
    cur = await conn.execute(
        "SELECT status, phase, version, spec, run, checkpoint, rows_done, rows_total, score,"
        " reason, created_at, updated_at, started_at, finished_at FROM migrations"
        " WHERE migration_id = %s",
        (mid,),
    )
    row = await cur.fetchone()
    cur = await conn.execute(
        "SELECT phase, status, run, rows_done, rows_total, checkpoint, score, reason,"
        " started_at, finished_at, updated_at FROM migration_phases"
        " WHERE migration_id = %s ORDER BY phase",
        (mid,),
    )
    return row, await cur.fetchall()


async def test_one_event_per_batch_gives_the_rows_of_one_batch(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await apply_schema(conn)
        async with conn.transaction():
            await fold_and_write(conn, history("whole"))
        for event in history("split"):
            async with conn.transaction():
                await fold_and_write(conn, [event])

        whole, split = await tables(conn, "whole"), await tables(conn, "split")

    assert split == whole
    row, phases = whole
    assert row is not None and row[0] == "CANCELLED"
    assert [(p[0], p[1], p[5]) for p in phases] == [  # type: ignore[attr-defined]
        ("extract", "COMPLETED", None),
        ("transform", "CANCELLED", "7"),
    ]


async def test_rows_kept_between_batches_give_the_rows_loading_them_gives(
    database_url: str,
) -> None:
    cache = RowCache()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await apply_schema(conn)
        for event in history("loaded"):
            async with conn.transaction():
                await fold_and_write(conn, [event])
        for event in history("kept"):
            async with conn.transaction():
                folded, _ = await fold_and_write(conn, [event], cache)
            cache.remember(folded)

        loaded, kept = await tables(conn, "loaded"), await tables(conn, "kept")

    assert kept == loaded
    assert cache.hits == len(history("kept")) - 1  # every batch but the first took its row


async def test_a_row_written_by_another_hand_is_loaded_again(database_url: str) -> None:
    cache = RowCache()
    first, rest = history("m-1")[:3], history("m-1")[3:]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await apply_schema(conn)
        async with conn.transaction():
            folded, _ = await fold_and_write(conn, first, cache)
        cache.remember(folded)
        # a refold: the row deleted and written again (a new feed version), further on
        async with conn.transaction():
            await forget(conn, "m-1")
            await fold_and_write(conn, [*first, rest[0]])
        # and a batch that fails leaves nothing in the cache
        with pytest.raises(ZeroDivisionError):
            async with conn.transaction():
                await fold_and_write(conn, [rest[1]], cache)
                raise ZeroDivisionError
        async with conn.transaction():
            folded, _ = await fold_and_write(conn, rest[1:], cache)
        cache.remember(folded)
        cached_row = await tables(conn, "m-1")
        async with conn.transaction():
            await fold_and_write(conn, history("m-2"))
        assert folded.duplicates == [] and folded.quarantined == []
        assert cached_row == await tables(conn, "m-2")
    assert cache.misses == 2  # the refolded row: for the batch rolled back, and the next

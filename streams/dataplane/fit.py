"""Whether a source table can travel, decided before anything is copied: its
key is one of its columns (batches are ranges of one column's values), and
the target database has, or is given, every type its columns are built on."""

from __future__ import annotations

from collections.abc import Sequence

from streams.dataplane import catalog, usertypes
from streams.dataplane.context import PhaseContext
from streams.dataplane.errors import SpecError


async def prepare(ctx: PhaseContext, names: Sequence[str]) -> None:
    """SpecError with the reason when the table cannot travel; else the
    target gets the user-defined types it lacks (see usertypes)."""
    spec = ctx.spec
    if spec.source_key not in names:
        async with ctx.source.connection() as source:
            primary = await catalog.primary_key_columns(source, spec.source_table)
        raise SpecError(key_missing(spec.source_key, spec.source_table, primary))
    await usertypes.ensure(ctx.source, ctx.target, spec.source_table)


def key_missing(key: str, table: str, primary: Sequence[str]) -> str:
    reason = f"source key {key} is not a column of {table}"
    if len(primary) > 1:
        reason += (
            f"; its primary key ({', '.join(primary)}) has {len(primary)} columns, and"
            " composite keys are not supported: batches are ranges of one column's values,"
            " so the source key must be one column that alone identifies every row"
        )
    return reason

"""Whether a source table can travel, decided before anything is copied: its
key is one or several of its columns that together identify every row (no
NULL in any of them, no value, or combination of values, in two rows), and
the target database has, or is given, every type its columns are built on."""

from __future__ import annotations

from collections.abc import Sequence

from domain import errors
from domain.spec import key_text, parse_source_key
from streams.dataplane import catalog, usertypes
from streams.dataplane.context import PhaseContext
from streams.dataplane.database import Conn
from streams.dataplane.errors import SpecError


async def prepare(ctx: PhaseContext, names: Sequence[str]) -> tuple[str, ...]:
    """The source key's columns, once each is a column of the source (`names`);
    SpecError with the reason when the table cannot travel; the target gets
    the user-defined types it lacks (see usertypes)."""
    spec = ctx.spec
    try:
        key = parse_source_key(spec.source_key)
    except errors.SpecError as exc:  # a record that reached the data plane unchecked
        raise SpecError(str(exc)) from None
    if not set(key) <= set(names):
        async with ctx.source.connection() as source:
            primary = await catalog.primary_key_columns(source, spec.source_table)
        raise SpecError(key_missing(key, spec.source_table, names, primary))
    await usertypes.ensure(ctx.source, ctx.target, spec.source_table)
    return key


def key_missing(
    key: Sequence[str], table: str, names: Sequence[str], primary: Sequence[str]
) -> str:
    missing = [k for k in key if k not in names]
    if len(key) == 1:
        reason = f"source key {key[0]} is not a column of {table}"
    else:
        reason = f"source key {key_text(key)} names {', '.join(missing)}: not a column of {table}"
    if primary:
        reason += f'; its primary key is {key_text(primary)}: source_key "{", ".join(primary)}"'
    return reason


async def checked_key(source: Conn, name: str, key: Sequence[str]) -> int:
    """The source's row count, once its key is known to identify every row:
    no NULL in any of its columns and no repeated value (SpecError saying
    which, before any copy). A unique index on the key's columns (or on some
    of them) spares the scan for repeats."""
    total, nulls, per_column = await catalog.count_keys(source, name, key)
    if nulls:
        raise SpecError(null_keys(name, key, total, nulls, per_column))
    if not await catalog.has_unique_index(source, name, key):
        repeated, sample = await catalog.repeated_keys(source, name, key)
        if repeated:
            values = "values" if len(key) == 1 else "combinations"
            raise SpecError(
                f"source key {key_text(key)} of {name} is not unique: {repeated} {values} occur"
                f" more than once, e.g. {', '.join(sample)}"
            )
    return total


def null_keys(
    name: str, key: Sequence[str], total: int, nulls: int, per_column: Sequence[int]
) -> str:
    """Why a key with NULLs (in `nulls` of `total` rows) cannot identify rows."""
    if len(key) == 1:
        where = f"is NULL in {nulls} of {total} rows"
    else:
        counts = ", ".join(f"{k} in {n}" for k, n in zip(key, per_column, strict=True) if n)
        where = f"has a NULL column in {nulls} of {total} rows (NULL: {counts})"
    return f"source key {key_text(key)} of {name} {where}; the key must identify every row"

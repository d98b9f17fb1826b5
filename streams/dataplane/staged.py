"""What extract leaves for the phases after it, read from its checkpoints:
the staged rows' key and columns, how each column is hashed, the snapshot it
read, and the source's figures in that snapshot (rows counted when the copy
was planned; rows and checksum of every chunk as it was copied).

The key is recorded as one column's name (`"key": "id"`, as it always was)
or, for a composite key, the list of its columns (`"key": ["tenant_id",
"id"]`); either reads as the tuple of the key's columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.spec import Column, key_text
from streams.dataplane import checkpoints
from streams.dataplane.database import Conn
from streams.dataplane.errors import PhaseError, SpecError
from streams.dataplane.snapshots import snapshot_id

EXTRACT = "extract"


@dataclass(frozen=True)
class Staged:
    key: tuple[str, ...]  # the staged rows' key columns (the source key's, as mapped)
    names: tuple[str, ...]  # the staged columns, in order
    native: tuple[bool, ...]  # per column: hashed by its type (else by its text)
    planned_rows: int  # the source's rows when the copy was planned
    rows: int  # rows copied, summed over the chunks
    checksum: int  # the source's checksum, summed over the chunks
    chunks: int
    snapshot: str | None

    def figures(self) -> dict[str, Any]:
        return {
            "source_rows": self.planned_rows,
            "copied_rows": self.rows,
            "source_checksum": str(self.checksum),
            "source_snapshot": self.snapshot,
            "chunks": self.chunks,
        }


def plan_position(
    key: Sequence[str], names: list[str], native: list[bool], rows: int
) -> dict[str, Any]:
    """What the first chunk's checkpoint records about the whole copy."""
    recorded: str | list[str] = key[0] if len(key) == 1 else list(key)
    return {"key": recorded, "columns": names, "native": native, "source": {"rows": rows}}


def _key_of(recorded: str | list[str]) -> tuple[str, ...]:
    return (recorded,) if isinstance(recorded, str) else tuple(str(k) for k in recorded)


async def read(conn: Conn, migration_id: str) -> Staged:
    found = await checkpoints.load(conn, migration_id, EXTRACT)
    if not found or "key" not in found[0].position:
        raise PhaseError("extract left no checkpoint: nothing was staged")
    first = found[0].position
    return Staged(
        key=_key_of(first["key"]),
        names=tuple(first["columns"]),
        native=tuple(bool(n) for n in first["native"]),
        planned_rows=int(first["source"]["rows"]),
        rows=sum(cp.rows_done for cp in found),
        checksum=sum(int((cp.result or {}).get("checksum", 0)) for cp in found),
        chunks=len(found),
        snapshot=snapshot_id(first),
    )


def key_columns(plan: tuple[Column, ...], source_key: Sequence[str]) -> tuple[str, ...]:
    """The staged rows' key: per source key column, the column computed from it alone."""
    return tuple(_key_column(plan, column, source_key) for column in source_key)


def _key_column(plan: tuple[Column, ...], source: str, source_key: Sequence[str]) -> str:
    for column in plan:
        if column.sources == (source,) and column.is_plain:
            return column.target
    for column in plan:
        if column.sources == (source,):
            return column.target
    if len(source_key) == 1:
        raise SpecError(f"the mapping drops the source key {source}; keep or rename it")
    raise SpecError(
        f"the mapping drops {source}, a column of the source key {key_text(source_key)};"
        " keep or rename it"
    )

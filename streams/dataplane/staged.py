"""What extract leaves for the phases after it, read from its checkpoints:
the staged rows' key and columns, how each column is hashed, the snapshot it
read, and the source's figures in that snapshot (rows counted when the copy
was planned; rows and checksum of every chunk as it was copied)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.spec import Column
from streams.dataplane import checkpoints
from streams.dataplane.database import Conn
from streams.dataplane.errors import PhaseError, SpecError
from streams.dataplane.snapshots import snapshot_id

EXTRACT = "extract"


@dataclass(frozen=True)
class Staged:
    key: str  # the staged rows' key column (the source key, as mapped)
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


def plan_position(key: str, names: list[str], native: list[bool], rows: int) -> dict[str, Any]:
    """What the first chunk's checkpoint records about the whole copy."""
    return {"key": key, "columns": names, "native": native, "source": {"rows": rows}}


async def read(conn: Conn, migration_id: str) -> Staged:
    found = await checkpoints.load(conn, migration_id, EXTRACT)
    if not found or "key" not in found[0].position:
        raise PhaseError("extract left no checkpoint: nothing was staged")
    first = found[0].position
    return Staged(
        key=str(first["key"]),
        names=tuple(first["columns"]),
        native=tuple(bool(n) for n in first["native"]),
        planned_rows=int(first["source"]["rows"]),
        rows=sum(cp.rows_done for cp in found),
        checksum=sum(int((cp.result or {}).get("checksum", 0)) for cp in found),
        chunks=len(found),
        snapshot=snapshot_id(first),
    )


def key_column(plan: tuple[Column, ...], source_key: str) -> str:
    """The staged rows' key: the column computed from the source key alone."""
    for column in plan:
        if column.sources == (source_key,) and column.is_plain:
            return column.target
    for column in plan:
        if column.sources == (source_key,):
            return column.target
    raise SpecError(f"the mapping drops the source key {source_key}; keep or rename it")

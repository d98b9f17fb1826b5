"""Every Avro schema this process knows, loaded and parsed once, at import.

    current   the schemas we write, and read every record into: schemas/*.avsc,
              one record per file, a named type referenced by its full name
    writers   every writer schema we can read, by fingerprint: the current ones
              and each one archived in schemas/history/

A history file holds the Parsing Canonical Form of one writer schema and is
named `<Name>.<fingerprint>.avsc`. History keeps every version ever written,
because events are kept forever and replayed; in a staged rollout it also
holds the next version, so that every reader knows a schema before any writer
uses it. `python -m schemas archive` adds the current versions (a test fails
until it has); nothing is ever removed.

A fingerprint is the one Avro's single-object encoding uses: CRC-64-AVRO
(Rabin) of the Parsing Canonical Form, as 8 bytes, little-endian.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from fastavro.schema import UnknownType, parse_schema, to_parsing_canonical_form
from fastavro.schema import fingerprint as _hex_fingerprint

from schemas.shapes import Shape, shape_of, short_name

SCHEMA_DIR = Path(__file__).parent
HISTORY_DIR = SCHEMA_DIR / "history"
MARKER = b"\xc3\x01"  # opens every single-object encoded record


@dataclass(frozen=True)
class Schema:
    name: str  # the record's type name, e.g. "StartMigration"
    fingerprint: bytes
    canonical: str  # Parsing Canonical Form
    parsed: Any  # fastavro's parsed schema, self-contained (named types expanded)

    @cached_property
    def header(self) -> bytes:
        """What a single-object encoded record written with this schema starts with."""
        return MARKER + self.fingerprint


@dataclass(frozen=True)
class Registry:
    current: Mapping[str, Schema]
    writers: Mapping[bytes, Schema]
    shapes: Mapping[str, Shape]


def load(directory: Path = SCHEMA_DIR, history: Sequence[Path] = (HISTORY_DIR,)) -> Registry:
    raws = [_read_json(path) for path in sorted(directory.glob("*.avsc"))]
    current = {schema.name: schema for schema in _expand_all(raws)}
    writers = {
        schema.fingerprint: schema
        for folder in history
        for schema in map(_from_file, sorted(folder.glob("*.avsc")))
    }
    writers.update({schema.fingerprint: schema for schema in current.values()})
    shapes = {short_name(raw["name"]): shape_of(raw) for raw in raws}
    return Registry(current, writers, shapes)


def fingerprint(canonical: str) -> bytes:
    return bytes.fromhex(_hex_fingerprint(canonical, "CRC-64-AVRO"))


def history_name(schema: Schema) -> str:
    return f"{schema.name}.{schema.fingerprint.hex()}.avsc"


def archive(registry: Registry, folder: Path = HISTORY_DIR) -> list[Path]:
    """Write each current schema not yet in `folder`; the paths written."""
    written = []
    for schema in registry.current.values():
        path = folder / history_name(schema)
        if not path.exists():
            path.write_text(schema.canonical + "\n")
            written.append(path)
    return written


def _expand_all(raws: Sequence[dict[str, Any]]) -> list[Schema]:
    """Parse schemas that name each other, in whatever order they depend."""
    named: dict[str, Any] = {}
    pending, schemas, stalled = list(raws), [], 0
    while pending and stalled <= len(pending):
        raw, trial = pending.pop(0), dict(named)
        try:
            expanded: dict[str, Any] = parse_schema(raw, trial, expand=True)  # type: ignore[assignment]
        except UnknownType:
            pending.append(raw)
            stalled += 1
            continue
        named, stalled = trial, 0
        schemas.append(_from_definition({k: v for k, v in expanded.items() if k[:2] != "__"}))
    if pending:
        raise ValueError(f"unresolved named types in {[raw['name'] for raw in pending]}")
    return schemas


def _from_file(path: Path) -> Schema:
    return _from_definition(_read_json(path))


def _from_definition(definition: dict[str, Any]) -> Schema:
    parsed = parse_schema(definition, {})  # its own named types only
    canonical = to_parsing_canonical_form(parsed)
    return Schema(short_name(definition["name"]), fingerprint(canonical), canonical, parsed)


def _read_json(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


REGISTRY = load()

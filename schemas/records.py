"""Mapping between domain records and their plain (JSON/Avro-shaped) form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from schemas.exceptions import RecordError
from streams.domain import CommandRejected, MigrationSpec, MigrationStarted, StartMigration
from streams.domain.commands import Command
from streams.domain.events import Event

COMMAND_TYPES: dict[str, type[Any]] = {"StartMigration": StartMigration}
EVENT_TYPES: dict[str, type[Any]] = {
    "MigrationStarted": MigrationStarted,
    "CommandRejected": CommandRejected,
}


def to_plain(record: Command | Event) -> dict[str, Any]:
    plain = asdict(record)
    if "spec" in plain:
        plain["spec"] = to_plain_spec(record.spec)  # type: ignore[union-attr]
    return plain


def to_plain_spec(spec: MigrationSpec) -> dict[str, Any]:
    plain = asdict(spec)
    plain["rules"] = [dict(rule) for rule in spec.rules]
    plain["mapping"] = dict(spec.mapping)
    return plain


def spec_from_plain(plain: object) -> MigrationSpec:
    body = _require_mapping(plain, "spec")
    _reject_unknown(body, MigrationSpec, "spec")
    data = dict(body)
    data["rules"] = tuple(data.get("rules", ()))
    spec: MigrationSpec = _build(MigrationSpec, data, "spec")
    return spec


def command_from_plain(plain: Mapping[str, Any]) -> Command:
    return _from_plain(plain, COMMAND_TYPES, "command")  # type: ignore[no-any-return]


def event_from_plain(plain: Mapping[str, Any]) -> Event:
    return _from_plain(plain, EVENT_TYPES, "event")  # type: ignore[no-any-return]


def _from_plain(plain: Mapping[str, Any], types: dict[str, type[Any]], kind: str) -> Any:
    body = _require_mapping(plain, kind)
    name = body.get("type")
    cls = types.get(name) if isinstance(name, str) else None
    if cls is None:
        raise RecordError(f"unknown {kind} type {name!r}; expected one of {sorted(types)}")
    _reject_unknown(body, cls, kind)
    data = dict(body)
    if "spec" in data:
        data["spec"] = spec_from_plain(data["spec"])
    return _build(cls, data, str(name))


def _build(cls: type[Any], data: dict[str, Any], what: str) -> Any:
    missing = [
        f.name
        for f in fields(cls)
        if f.name not in data and f.default is f.default_factory  # both MISSING
    ]
    if missing:
        raise RecordError(f"{what}: missing field(s) {', '.join(missing)}")
    for f in fields(cls):
        if f.name in data and f.type == "str" and not isinstance(data[f.name], str):
            raise RecordError(f"{what}: field {f.name} must be a string")
    return cls(**data)


def _reject_unknown(body: Mapping[str, Any], cls: type[Any], what: str) -> None:
    unknown = set(body) - {f.name for f in fields(cls)}
    if unknown:
        raise RecordError(f"{what}: unknown field(s) {', '.join(sorted(unknown))}")


def _require_mapping(plain: object, what: str) -> Mapping[str, Any]:
    if not isinstance(plain, Mapping):
        raise RecordError(f"{what} must be a JSON object")
    return plain

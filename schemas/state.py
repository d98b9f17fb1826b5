"""A migration's state in plain form, as the orchestrator's changelog stores it."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from domain import MigrationState, Status
from schemas.records import spec_from_plain, to_plain_spec

_SETS = ("seen", "seen_results")


def state_to_plain(state: MigrationState) -> dict[str, Any]:
    plain = {f.name: getattr(state, f.name) for f in fields(state)}
    plain["status"] = state.status.value
    plain["spec"] = to_plain_spec(state.spec) if state.spec else None
    for name in _SETS:
        plain[name] = sorted(plain[name])
    return plain


def state_from_plain(plain: dict[str, Any]) -> MigrationState:
    data = dict(plain)
    data["status"] = Status(data["status"])
    for name in _SETS:
        data[name] = frozenset(data.get(name, ()))
    spec = data.pop("spec", None)
    state = MigrationState(**data)
    return replace(state, spec=spec_from_plain(spec)) if spec else state

"""A migration's state in plain form, as the orchestrator's table stores it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from schemas.records import spec_from_plain, to_plain_spec
from streams.domain import MigrationState, Status


def state_to_plain(state: MigrationState) -> dict[str, Any]:
    return {
        "migration_id": state.migration_id,
        "status": state.status.value,
        "version": state.version,
        "spec": to_plain_spec(state.spec) if state.spec else None,
        "seen_commands": sorted(state.seen_commands),
    }


def state_from_plain(plain: dict[str, Any]) -> MigrationState:
    state = MigrationState(
        migration_id=plain["migration_id"],
        status=Status(plain["status"]),
        version=int(plain["version"]),
        seen_commands=frozenset(plain["seen_commands"]),
    )
    spec = plain.get("spec")
    return replace(state, spec=spec_from_plain(spec)) if spec else state

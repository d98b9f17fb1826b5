"""A migration's state in plain form, as the orchestrator's changelog stores it.

`status` and `phase` travel as their enums' values; reading one that names
no member is a RecordError that names the field. A live migration's
`cutover` options travel as an object.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from enum import StrEnum
from typing import Any, TypeVar

from domain import CutoverOptions, MigrationSpec, MigrationState, Phase, Status
from schemas.exceptions import RecordError
from schemas.records import spec_from_plain, to_plain_spec

_SETS = ("seen", "seen_results")
E = TypeVar("E", bound=StrEnum)
SPECS_KEPT = 1024  # specs whose JSON text is kept, by identity
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def state_to_plain(state: MigrationState) -> dict[str, Any]:
    plain = {f.name: getattr(state, f.name) for f in fields(state)}
    plain["status"] = state.status.value
    plain["phase"] = state.phase.value if state.phase is not None else None
    plain["spec"] = to_plain_spec(state.spec) if state.spec else None
    plain["cutover"] = asdict(state.cutover) if state.cutover is not None else None
    for name in _SETS:
        plain[name] = sorted(plain[name])
    return plain


# A spec's JSON text, by the spec's identity: a migration's states share one
# spec object from its start on, and its text is most of each changelog record.
# The spec itself is held, so its id is not reused while it is here.
_spec_texts: dict[int, tuple[MigrationSpec, str]] = {}


def state_to_json(state: MigrationState) -> bytes:
    """The state's plain form as compact JSON text (what `state_to_plain`
    dumps, the spec last)."""
    plain = dict(state.__dict__)  # a frozen dataclass's fields, as they are
    for name in _SETS:
        plain[name] = sorted(plain[name])
    if state.cutover is not None:
        plain["cutover"] = asdict(state.cutover)
    spec = plain.pop("spec")
    text = _COMPACT.encode(plain)  # the enums are str: written as their values
    if spec is None:
        return f'{text[:-1]},"spec":null}}'.encode()
    return f'{text[:-1]},"spec":{_spec_text(spec)}}}'.encode()


def _spec_text(spec: MigrationSpec) -> str:
    kept = _spec_texts.get(id(spec))
    if kept is not None and kept[0] is spec:
        return kept[1]
    text = _COMPACT.encode(to_plain_spec(spec))
    if len(_spec_texts) >= SPECS_KEPT:
        _spec_texts.clear()
    _spec_texts[id(spec)] = (spec, text)
    return text


def state_from_plain(plain: dict[str, Any]) -> MigrationState:
    data = dict(plain)
    data["status"] = member(Status, data.get("status"), "state.status")
    if data.get("phase") is not None:
        data["phase"] = member(Phase, data["phase"], "state.phase")
    for name in _SETS:
        data[name] = frozenset(data.get(name, ()))
    spec = data.pop("spec", None)
    if data.get("cutover") is not None:
        data["cutover"] = _cutover(data["cutover"])
    state = MigrationState(**data)
    return replace(state, spec=spec_from_plain(spec)) if spec else state


def _cutover(plain: Any) -> CutoverOptions:
    try:
        return CutoverOptions(**plain)
    except TypeError as exc:
        raise RecordError(f"state.cutover: {exc}") from None


def member(enum: type[E], value: Any, where: str) -> E:
    """The member of `enum` whose value is `value`, else a RecordError naming `where`."""
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(m.value for m in enum)
        raise RecordError(f"{where} must be one of {names}, not {value!r}") from None

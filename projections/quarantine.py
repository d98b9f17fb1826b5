"""Quarantine: park the one migration whose log the read model cannot follow,
never the read model (pure, no I/O).

Each event is judged against the migration's row before it is folded in:

- the next sequence (version + 1): applied;
- a sequence already applied, with the same content: a repeat, not applied again;
- a sequence already applied, with other content: a **fork** ("fork: sequence 3
  seen twice with different events"): never merged;
- a sequence past the next one (or below 1): a **gap** ("gap: expected sequence
  4, got 6"): never guessed across;
- an event the database refuses to store (found when the batch is written,
  `projections.storing`): **unstorable** ("unstorable event 5: <the database's
  error>").

A quarantined row keeps the fold of the events before the one it could not
take (`at_sequence`), so it is the same whatever the batch boundaries were: a
rebuild quarantines it at the same event with the same row. That event and
every later one of the migration are held back (counted, not applied) while it
is quarantined; every other migration goes on. `migrator projection refold`
folds it again from the log and lifts the quarantine once the sequence is
1..N and storable.

NUL characters. PostgreSQL can store U+0000 neither in `text` nor in `jsonb`,
so an event holding one (a pause reason typed with a NUL, say) can never be
stored as it is: the projector quarantines its migration as unstorable, and the
log keeps the event as it was written. A refold stores such an event with each
NUL written as the six characters `\\u0000` (JSON's own escape for it, as
text), in the history and in the row alike, and lists the sequences stored so
in the row's `escaped_sequences`: the read model says where it differs from the
log, and the refold can lift the quarantine. The projector never escapes on its
own: keeping an altered value is the operator's decision, taken by refolding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from domain.events import Event
from schemas.records import from_plain, to_plain
from schemas.registry import REGISTRY

NUL = "\x00"
NUL_ESCAPED = "\\u0000"
REASON_CHARS = 1000


@dataclass(frozen=True)
class Quarantine:
    """Why a migration is held, at which event, and since when (None: from
    the transaction that writes it on)."""

    reason: str
    at_sequence: int
    since: str | None = None


class Verdict(Enum):
    APPLY = "apply"
    REPEAT = "repeat"


def judge(version: int, event: Event, earlier: object | None) -> Verdict | Quarantine:
    """What to do with `event` on a row at `version`; `earlier` is the stored
    form of the event already applied at its sequence, if any."""
    sequence = event.sequence
    if sequence == version + 1:
        return Verdict.APPLY
    if sequence > version + 1 or sequence < 1:
        return gap(version + 1, sequence)
    if earlier is not None and earlier == stored_form(event):
        return Verdict.REPEAT
    return fork(sequence)


def gap(expected: int, got: int) -> Quarantine:
    return Quarantine(f"gap: expected sequence {expected}, got {got}", got)


def fork(sequence: int) -> Quarantine:
    return Quarantine(f"fork: sequence {sequence} seen twice with different events", sequence)


def unstorable(sequence: int, error: str) -> Quarantine:
    reason = escape_text(f"unstorable event {sequence}: {error}")
    return Quarantine(reason[:REASON_CHARS], sequence)


def stored_form(event: Event) -> Any:
    """The event as its history row holds it (JSONB), NULs escaped as a refold stores them."""
    return escape_nul(json.loads(json.dumps(to_plain(event))))


def escape_text(text: str) -> str:
    return text.replace(NUL, NUL_ESCAPED)


def escape_nul(value: Any) -> Any:
    """`value` (a JSON value) with every NUL in its strings and keys escaped."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, dict):
        return {escape_text(k): escape_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_nul(v) for v in value]
    return value


def holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


def escaped_event(event: Event) -> Event | None:
    """`event` with its NULs escaped, or None when it holds none."""
    plain = to_plain(event)
    if not holds_nul(plain):
        return None
    body = escape_nul(plain)
    name = body.pop("type")
    escaped: Event = from_plain(body, name, REGISTRY.shapes, name)
    return escaped

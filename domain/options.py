"""A spec's two options, checked before anything runs.

- `on_existing`: what load does when the target table already exists:
  `replace` (its rows are replaced by the migrated ones, atomically), `append`
  (the rows are added; a key already there fails the load, saying which) or
  `upsert` (insert, or update by key: the default). A target table that does
  not exist yet is created and swapped in whole, whatever the option.
- `mode`: `full` (the default: extract, transform, validate, load, reconcile)
  or `copy-only` (the rows as they are: no mapping, no rules; reconciled by
  count and checksum). A copy-only spec with a mapping or a rule is refused.

The record carries the options as text (an old record decodes with the
defaults; a value this code does not know is refused here, by name, rather
than lost in decoding). `domain.spec.parse_spec` returns them typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from domain.errors import SpecError

SHOWN = 40  # characters of a refused value quoted back


class OnExisting(StrEnum):
    """What load does when the target table already exists."""

    REPLACE = "replace"
    APPEND = "append"
    UPSERT = "upsert"


class Mode(StrEnum):
    """How much of the pipeline a migration runs."""

    FULL = "full"
    COPY_ONLY = "copy-only"


def parse_on_existing(value: object) -> OnExisting:
    return OnExisting(_one_of(OnExisting, value, "on_existing"))


def parse_mode(value: object) -> Mode:
    return Mode(_one_of(Mode, value, "mode"))


def check_copy_only(mode: object, mapping: Mapping[str, Any], rules: Sequence[object]) -> None:
    """SpecError when a copy-only spec has a mapping or a rule."""
    if mode != Mode.COPY_ONLY:
        return
    if mapping:
        raise SpecError(
            "mapping must be empty when mode is 'copy-only' (the rows are copied as they are);"
            " use mode 'full' to map columns"
        )
    if rules:
        raise SpecError(
            "rules must be empty when mode is 'copy-only' (reconciled by count and checksum"
            " only); use mode 'full' to validate rows"
        )


def parse_options(
    on_existing: object, mode: object, mapping: Mapping[str, Any], rules: Sequence[object]
) -> tuple[OnExisting, Mode]:
    """Both options, typed; SpecError names the first one that is wrong."""
    parsed = parse_on_existing(on_existing), parse_mode(mode)
    check_copy_only(parsed[1], mapping, rules)
    return parsed


def _one_of(kind: type[StrEnum], value: object, field: str) -> str:
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        shown = repr(value)
        shown = shown if len(shown) <= SHOWN else f"{shown[:SHOWN]}…"
        raise SpecError(f"{field} must be one of {allowed}, not {shown}")
    return value

"""What an operator asks of a redrive or a purge, validated once, before
anything is read or sent: the CLI builds these from its options, the API from
its JSON body (the field names are the body's: `all`, `offsets`, `before`,
...), and the API documents them from these models, bounds included."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ops.dead_letters.plan import POSITION, Selection, parse_positions
from ops.dead_letters.purge import parse_before
from ops.dead_letters.redrive import MAX_RATE, MIN_RATE

PositionText = Annotated[str, Field(pattern=POSITION, examples=["0:42"])]


def whole_number(value: object) -> object:
    """A body's integer as the OpenAPI document's `integer` means it: 3 or
    3.0 (JSON Schema's integer is any number without a fraction)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


MAX_POSITIONS = 10_000


def either_all_or(field: str) -> dict[str, Any]:
    """The JSON schema's word for "`all: true`, or a non-empty `field`; not both"."""
    return {
        "oneOf": [
            {"required": ["all"], "properties": {"all": {"const": True}, field: {"maxItems": 0}}},
            {"required": [field], "properties": {field: {"minItems": 1}, "all": {"const": False}}},
        ]
    }


def _check_either(everything: bool, given: list[str], field: str) -> None:
    if everything == bool(given):
        raise ValueError(f"give either all: true or some {field}, not both or neither")


class _Selecting(BaseModel):
    """What a redrive and a purge share: strict, frozen, no unknown field, and
    `all` (`everything` in Python) as one of the two ways to select."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)
    everything: bool = Field(default=False, alias="all")


class RedriveRequest(_Selecting):
    """Every dead letter (`all`) or those at `offsets` (`p:o`), at most `limit`,
    at most `rate` records/s; a `dry_run` only previews."""

    model_config = ConfigDict(json_schema_extra=either_all_or("offsets"))
    offsets: list[PositionText] = Field(default_factory=list, max_length=MAX_POSITIONS)
    dry_run: bool = False
    limit: int | None = Field(default=None, ge=1, le=2**31 - 1)
    rate: float | None = Field(default=None, ge=MIN_RATE, le=MAX_RATE)
    max_attempts: int | None = Field(default=None, ge=1, le=1_000_000)
    _whole = field_validator("limit", "max_attempts", mode="before")(whole_number)

    @model_validator(mode="after")
    def _one_selection(self) -> RedriveRequest:
        _check_either(self.everything, self.offsets, "offsets")
        return self

    def selection(self) -> Selection:
        """The records asked for."""
        return Selection(self.everything, parse_positions(self.offsets), self.limit)

    def attempts(self, default: int) -> int:
        """Records that failed this often are refused."""
        return self.max_attempts or default


class PurgeRequest(_Selecting):
    """Every record read now (`all`) or each partition below an offset
    (`before`: `p:o`); nothing is deleted without `confirm`."""

    model_config = ConfigDict(json_schema_extra=either_all_or("before"))
    before: list[PositionText] = Field(default_factory=list, max_length=MAX_POSITIONS)
    confirm: bool = False

    @model_validator(mode="after")
    def _one_selection(self) -> PurgeRequest:
        _check_either(self.everything, self.before, "before")
        return self

    def cut(self) -> dict[int, int] | None:
        """{partition: delete below this offset}, or None for every record read."""
        return None if self.everything else parse_before(self.before)

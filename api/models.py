"""Request bodies, validated strictly: unknown fields and bad values are 4xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from api.spec_schema import (
    COLUMN_MAPPING,
    COPY_ONLY,
    IDENTIFIER,
    MODE,
    NO_NUL,
    ON_EXISTING,
    RULE,
    SOURCE_KEY,
    SOURCE_KEY_PATTERN,
    regex_refusal,
)
from domain import MigrationSpec
from domain.errors import SpecError
from domain.options import Mode, OnExisting, check_copy_only, parse_mode, parse_on_existing
from domain.spec import parse_source_key, parse_spec_parts
from ops.dead_letters.requests import whole_number

NAME = f"^{IDENTIFIER}$"
MIGRATION_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
RESERVED_IDS = ("pause-all", "resume-all")  # /api/v1/migrations/<these> are the bulk routes
# Checked by the domain's parser (check_spec_parts), documented as api.spec_schema says.
Mapping = Annotated[dict[str, Any], WithJsonSchema(COLUMN_MAPPING)]
MAX_RULES = 100
Rules = Annotated[
    list[dict[str, Any]],
    WithJsonSchema({"type": "array", "items": RULE, "maxItems": MAX_RULES}),
]


def _domain(parse: Callable[[object], object]) -> Callable[[str], str]:
    """A domain parser as a pydantic validator: its SpecError becomes the
    ValueError pydantic reports as the field's error; the value stays the
    text as given."""

    def check(value: str) -> str:
        try:
            parse(value)
            return value
        except SpecError as exc:
            raise ValueError(str(exc)) from exc

    return check


# Checked by domain.options, documented as api.spec_schema says.
OnExistingText = Annotated[
    str, AfterValidator(_domain(parse_on_existing)), WithJsonSchema(ON_EXISTING)
]
ModeText = Annotated[str, AfterValidator(_domain(parse_mode)), WithJsonSchema(MODE)]
# Names checked by the pattern, each once by domain.spec (which a pattern cannot say).
SourceKeyText = Annotated[
    str,
    StringConstraints(pattern=SOURCE_KEY_PATTERN),
    AfterValidator(_domain(parse_source_key)),
    WithJsonSchema(SOURCE_KEY),
]


def check_spec_parts(mode: str, mapping: dict[str, Any], rules: list[dict[str, Any]]) -> None:
    """The domain's own check of a spec's mapping and rules (the one the data
    plane runs too), and that a copy-only spec has neither: its SpecError says
    what is wrong, handed to pydantic as the ValueError it turns into a field
    error of the body."""
    try:
        check_copy_only(mode, mapping, rules)
        parse_spec_parts(mapping, rules)
    except SpecError as exc:
        raise ValueError(str(exc)) from exc
    refused = regex_refusal(rules)
    if refused is not None:
        raise ValueError(refused)


class SpecIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, json_schema_extra=COPY_ONLY)

    source_connection: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    source_table: str = Field(pattern=NAME)
    source_key: SourceKeyText
    target_connection: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    target_table: str = Field(pattern=NAME)
    mapping: Mapping = Field(default_factory=dict)
    rules: Rules = Field(default_factory=list, max_length=MAX_RULES)
    min_score: float = Field(default=1.0, ge=0.0, le=1.0)
    batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    parallelism: int = Field(default=1, ge=1, le=64)
    on_existing: OnExistingText = OnExisting.UPSERT.value
    mode: ModeText = Mode.FULL.value
    cdc: bool = Field(
        default=False,
        description="after load and reconcile, capture and apply the source's changes"
        " (SYNCING) until a cutover",
    )
    _whole = field_validator("batch_size", "parallelism", mode="before")(whole_number)

    @model_validator(mode="after")
    def _parts(self) -> SpecIn:
        check_spec_parts(self.mode, self.mapping, self.rules)
        return self

    def to_domain(self) -> MigrationSpec:
        data = self.model_dump()
        data["rules"] = tuple(data["rules"])
        return MigrationSpec(**data)


class CreateMigrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    migration_id: str | None = Field(
        default=None,
        pattern=MIGRATION_ID,
        json_schema_extra={"not": {"enum": list(RESERVED_IDS)}},
    )
    spec: SpecIn

    @field_validator("migration_id")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value in RESERVED_IDS:
            raise ValueError(f"{value!r} names a bulk route, not a migration")
        return value


class ReasonIn(BaseModel):
    """The optional body of pause, cancel, pause-all."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    reason: str = Field(default="", max_length=500, pattern=NO_NUL)


class CutoverIn(BaseModel):
    """The body of cutover: the most lag it waits for (omitted or null: not a
    bound) and whether writes on the source are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_lag_bytes: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="bytes of source WAL not yet applied"
    )
    max_lag_seconds: float | None = Field(
        default=None,
        ge=0,
        le=86_400 * 365,
        allow_inf_nan=False,
        description="age in seconds of the oldest change not yet applied",
    )
    freeze: bool = Field(
        default=False, description="freeze writes on the source table before waiting"
    )
    _whole = field_validator("max_lag_bytes", mode="before")(whole_number)


class EmptyIn(BaseModel):
    """The optional body of resume, retry, resume-all: nothing, or `{}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

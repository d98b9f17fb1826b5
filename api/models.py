"""Request bodies, validated strictly: unknown fields and bad values are 4xx."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streams.domain import MigrationSpec

NAME = r"^[A-Za-z_][A-Za-z0-9_.]{0,127}$"


class SpecIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_connection: str = Field(min_length=1, max_length=64)
    source_table: str = Field(pattern=NAME)
    source_key: str = Field(pattern=NAME)
    target_connection: str = Field(min_length=1, max_length=64)
    target_table: str = Field(pattern=NAME)
    mapping: dict[str, Any] = Field(default_factory=dict)
    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    min_score: float = Field(default=1.0, ge=0.0, le=1.0)
    batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    parallelism: int = Field(default=1, ge=1, le=64)

    def to_domain(self) -> MigrationSpec:
        data = self.model_dump()
        data["rules"] = tuple(data["rules"])
        return MigrationSpec(**data)


class CreateMigrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    migration_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    spec: SpecIn

"""One frozen, typed settings object, built once at each process's edge.

Values come from the environment (or a `.env` file); nothing else in the code
reads the environment. Secrets are `SecretStr` so they never print.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a worker, projector, API or CLI process needs to know."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:39092", description="Kafka bootstrap servers"
    )
    topic_prefix: str = Field(default="", description="prefix for every topic name")
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    topic_replication_factor: int = Field(default=1, ge=1)
    app_id: str = Field(default="migration-orchestrator", description="names groups and ids")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://migrator@127.0.0.1:35432/migrations"),
        description="read model database (projector and API)",
    )
    database_pool_max: int = Field(default=10, ge=1)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8088, ge=0, le=65535)
    api_max_body_bytes: int = Field(default=256 * 1024, ge=1024)

    worker_id: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
        description="stable id of this worker instance (a random one when empty)",
    )
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535, description="0: no /metrics")
    commit_interval_seconds: float = Field(default=2.8, gt=0, le=60)
    transaction_timeout_ms: int = Field(default=10_000, ge=1000)
    session_timeout_ms: int = Field(default=10_000, ge=6000)
    log_level: str = "info"
    fault: str = Field(
        default="", description="chaos tests only: see streams/orchestrator/faults.py"
    )
    fault_batch: int = Field(default=3, ge=1)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]

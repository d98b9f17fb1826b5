"""One frozen, typed settings object, built once at each process's edge.

Values come from the environment (or a `.env` file); nothing else in the code
reads the environment. Secrets are `SecretStr` so they never print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.connections import Connection, UnknownConnection


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
    # The read model's API and projector (issue 5): roles, tokens, limits, metrics.
    api_database_url: SecretStr | None = Field(
        default=None,
        description="the API's read-only login; unset: DATABASE_URL as user API_DATABASE_USER",
    )
    api_database_user: str = Field(default="migrator_api", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    api_auth: Literal["tokens", "none"] = Field(
        default="tokens", description="'none' (explicitly) serves without bearer tokens"
    )
    api_tokens: SecretStr | None = Field(
        default=None, description='bearer tokens as JSON: {"<token>": "viewer" | "operator"}'
    )
    api_tokens_file: Path | None = Field(default=None, description="the same JSON, in a file")
    api_token: SecretStr | None = Field(default=None, description="the CLI's bearer token")
    api_rate_per_second: float = Field(default=50.0, gt=0, description="per client, sustained")
    api_rate_burst: int = Field(default=200, ge=1, description="per client, at once")
    api_live_max_clients: int = Field(default=500, ge=1, description="WebSockets + long polls")
    projector_batch_max: int = Field(default=1000, ge=1, le=100_000)
    projector_metrics_port: int = Field(default=0, ge=0, le=65535, description="0: no /metrics")
    projector_fault: Literal["", "kill_before_commit"] = Field(
        default="", description="tests only: SIGKILL inside the PROJECTOR_FAULT_BATCH-th batch"
    )
    projector_fault_batch: int = Field(default=3, ge=1)

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

    # The data plane: phase workers and the databases they move rows between.
    connections: dict[str, Connection] = Field(
        default_factory=dict,
        description="named databases, as JSON: {name: {host, port, database, user, password}}",
    )
    connections_file: Path | None = Field(
        default=None, description="a JSON file of named connections (merged, file first)"
    )
    phase_worker_id: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    phase_worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    phase_concurrency: int = Field(
        default=8, ge=1, le=256, description="batches in flight at once on one phase worker"
    )
    phase_pool_max: int = Field(default=8, ge=1, le=256, description="connections per database")
    phase_retry_attempts: int = Field(default=6, ge=1, le=100)
    phase_retry_max_seconds: float = Field(default=5.0, gt=0)
    phase_pool_timeout_seconds: float = Field(
        default=10.0, gt=0, description="longest wait for a pooled connection"
    )
    phase_statement_timeout_seconds: float = Field(default=300.0, gt=0)
    phase_progress_interval_seconds: float = Field(default=0.5, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=10.0, gt=0)

    # Operating it: dead-letter redrive and the metrics computed from Kafka.
    dlq_max_attempts: int = Field(
        default=5, ge=1, le=1000, description="redrive refuses a record that failed this often"
    )
    ops_metrics_interval_seconds: float = Field(
        default=15.0, gt=0, description="how often DLQ depth and consumer lag are refreshed"
    )

    @model_validator(mode="after")
    def _merge_connections_file(self) -> Settings:
        if self.connections_file is not None:
            raw = json.loads(self.connections_file.read_text())
            from_file = {name: Connection.model_validate(c) for name, c in raw.items()}
            object.__setattr__(self, "connections", {**from_file, **self.connections})
        return self

    def connection(self, name: str) -> Connection:
        try:
            return self.connections[name]
        except KeyError:
            raise UnknownConnection(name) from None


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]

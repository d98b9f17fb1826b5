"""One frozen, typed settings object, built once at each process's edge.

Values come from the environment (or a `.env` file); nothing else in the code
reads the environment. Secrets are `SecretStr` so they never print.

The settings are grouped by the process that reads them, and a variable is
named `<GROUP>_<FIELD>`: `settings.kafka.bootstrap_servers` is
`KAFKA_BOOTSTRAP_SERVERS`, `settings.phase.connections` is `PHASE_CONNECTIONS`
(JSON). Only `LOG_LEVEL`, read by every process, stands alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.connections import Connection, UnknownConnection

ID_PATTERN = r"^[A-Za-z0-9_.-]{0,64}$"


class Group(BaseModel):
    """A frozen group of settings; unknown `<GROUP>_*` variables are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class KafkaSettings(Group):
    """The broker, and the names every process derives from the app id."""

    bootstrap_servers: str = Field(default="127.0.0.1:39092", description="Kafka bootstrap servers")
    topic_prefix: str = Field(default="", description="prefix for every topic name")
    topic_partitions: int = Field(
        default=6, ge=1, le=1000, description="partitions of the topics it creates"
    )
    topic_replication_factor: int = Field(
        default=0,
        ge=0,
        description="replicas of the topics it creates; 0: one per broker, at most 3",
    )
    app_id: str = Field(
        default="migration-orchestrator", description="names groups and transactional ids"
    )


class DatabaseSettings(Group):
    """The read model's database, as its owner (the projector, rebuilds)."""

    url: SecretStr = Field(
        default=SecretStr("postgresql://migrator@127.0.0.1:35432/migrations"),
        description="read model database (projector and API)",
    )
    pool_max: int = Field(default=10, ge=1, description="connections in the read model's pool")


class ApiSettings(Group):
    """The HTTP API: where it listens, its read-only login, tokens and limits."""

    host: str = Field(
        default="127.0.0.1", description="address the API (and the workers' /metrics) bind"
    )
    port: int = Field(default=8088, ge=0, le=65535, description="the API's port")
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="largest request body (413 above)"
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="the API's read-only login; unset: DATABASE_URL as user API_DATABASE_USER",
    )
    database_user: str = Field(
        default="migrator_api",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="the read-only role used when API_DATABASE_URL is unset",
    )
    auth: Literal["tokens", "none"] = Field(
        default="tokens", description="'none' (explicitly) serves without bearer tokens"
    )
    tokens: SecretStr | None = Field(
        default=None, description='bearer tokens as JSON: {"<token>": "viewer" | "operator"}'
    )
    tokens_file: Path | None = Field(default=None, description="the same JSON, in a file")
    token: SecretStr | None = Field(default=None, description="the CLI's bearer token")
    rate_per_second: float = Field(default=50.0, gt=0, description="per client, sustained")
    rate_burst: int = Field(default=200, ge=1, description="per client, at once")
    live_max_clients: int = Field(default=500, ge=1, description="WebSockets + long polls")
    live_per_client: int = Field(
        default=50, ge=1, description="WebSockets + long polls of one client (429 above)"
    )
    live_operator_reserve: int = Field(
        default=50, ge=0, description="of API_LIVE_MAX_CLIENTS, slots only operators may take"
    )
    offload_workers: int = Field(
        default=4, ge=1, description="threads for the Kafka reads and calls (dead letters, lag)"
    )
    client_concurrency: int = Field(
        default=2, ge=1, description="expensive reads of one client in flight at once (429 above)"
    )
    header_seconds: float = Field(
        default=30.0, gt=0, description="a connection idle or still sending headers is closed"
    )
    body_seconds: float = Field(
        default=30.0, gt=0, description="a request body not received within this gets 408"
    )
    commands_in_flight: int = Field(
        default=1000, ge=1, description="commands published or awaited at once (503 above)"
    )
    commands_max_lag_seconds: float = Field(
        default=0.5,
        ge=0,
        description="commands are refused (503) while the API runs this late; 0: never",
    )


class ProjectorSettings(Group):
    """The projector: events into the read model."""

    batch_max: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="most events read and written in one transaction",
    )
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0: no /metrics")
    db_outage_seconds: float = Field(
        default=300.0,
        gt=0,
        description="how long it reconnects to a lost read-model database before it exits",
    )


class WorkerSettings(Group):
    """An orchestrator worker: the exactly-once loop."""

    id: str = Field(
        default="",
        pattern=ID_PATTERN,
        description="stable id of this worker instance (a random one when empty)",
    )
    processing_guarantee: Literal["exactly_once", "at_least_once"] = Field(
        default="exactly_once", description="transactions, or plain commits (for comparison)"
    )
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0: no /metrics")
    commit_interval_seconds: float = Field(
        default=2.8, gt=0, le=60, description="at-least-once: how often state and offsets commit"
    )
    transaction_timeout_ms: int = Field(
        default=10_000, ge=1000, description="the broker aborts a transaction open longer"
    )
    session_timeout_ms: int = Field(
        default=10_000,
        ge=6000,
        description="the group drops a member silent longer (phase workers too)",
    )
    max_poll_interval_ms: int = Field(
        default=45_000,
        ge=10_000,
        description="the group drops a member whose loop has not polled for longer",
    )
    state_retention_seconds: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="a completed or cancelled migration's state is retired (dropped from memory"
        " and changelog; later commands for it are rejected) this long after it finished",
    )


class PhaseSettings(Group):
    """A phase worker (the data plane) and the databases it moves rows between."""

    connections: dict[str, Connection] = Field(
        default_factory=dict,
        description="named databases, as JSON: {name: {host, port, database, user, password}}",
    )
    connections_file: Path | None = Field(
        default=None, description="a JSON file of named connections (merged, file first)"
    )
    worker_id: str = Field(
        default="", pattern=ID_PATTERN, description="stable id of this phase worker"
    )
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0: no /metrics")
    concurrency: int = Field(
        default=8, ge=1, le=256, description="batches in flight at once on one phase worker"
    )
    pool_max: int = Field(default=8, ge=1, le=256, description="connections per database")
    retry_attempts: int = Field(
        default=6,
        ge=1,
        le=100,
        description="tries of a batch lost to a serialization failure, deadlock or lock timeout"
        " before the phase fails (a database away: PHASE_RETRY_BUDGET_SECONDS instead)",
    )
    retry_budget_seconds: float = Field(
        default=300.0,
        gt=0,
        description="how long a batch keeps retrying while its database is away (connection"
        " lost or refused, recovering, no pooled connection) before the phase fails;"
        " waiting on an open breaker does not end it",
    )
    retry_max_seconds: float = Field(
        default=5.0, gt=0, description="longest backoff between two tries"
    )
    pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="longest wait for a pooled connection; also how long a pool keeps"
        " trying to reconnect",
    )
    statement_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="longest statement in a source or target database; one that runs longer"
        " fails its phase at once (never retried)",
    )
    validation_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="longest statement of the validation phase (one rule's check, or the"
        " score); one that runs longer fails the phase at once, naming the rule",
    )
    progress_interval_seconds: float = Field(
        default=0.5, ge=0, description="least time between two progress reports of a run"
    )
    snapshot_lease_seconds: float = Field(
        default=600.0,
        gt=0,
        description="how long extract's snapshot outlives its phase worker with no copy"
        " progress (or before the copy names it); then it ends and the copy starts over",
    )
    snapshot_keeper_min_bytes: int = Field(
        default=8 << 20,
        ge=0,
        description="source tables this large or larger have extract's snapshot held by a"
        " keeper process that outlives the phase worker; a smaller one is held by the run"
        " (a crash then copies it again, whole)",
    )
    breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="failures in a row of a database being away that open its breaker",
    )
    breaker_reset_seconds: float = Field(
        default=10.0, gt=0, description="how long an open breaker holds tries back before a trial"
    )

    @model_validator(mode="after")
    def _merge_connections_file(self) -> PhaseSettings:
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


class OpsSettings(Group):
    """Operating it: dead-letter redrive (CLI, API) and the metrics computed from
    Kafka (orchestrator workers)."""

    dlq_max_attempts: int = Field(
        default=5, ge=1, le=1000, description="redrive refuses a record that failed this often"
    )
    metrics_interval_seconds: float = Field(
        default=15.0, gt=0, description="how often DLQ depth and consumer lag are refreshed"
    )


class FaultSettings(Group):
    """Fault injection for the chaos and crash tests; off when empty."""

    worker: str = Field(default="", description="tests only: see streams/orchestrator/faults.py")
    worker_batch: int = Field(
        default=3, ge=1, description="the orchestrator transaction the fault hits"
    )
    projector: Literal["", "kill_before_commit"] = Field(
        default="", description="tests only: SIGKILL inside the FAULT_PROJECTOR_BATCH-th batch"
    )
    projector_batch: int = Field(default=3, ge=1, description="the projector batch it hits")


class TracesSettings(Group):
    """Traces (OpenTelemetry) of every process: off unless an endpoint is set."""

    endpoint: str = Field(
        default="",
        description="OTLP/HTTP endpoint of a trace backend (Jaeger: http://127.0.0.1:4318);"
        " empty: no traces",
    )


class Settings(BaseSettings):
    """Everything a worker, projector, API or CLI process needs to know."""

    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        frozen=True,
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    log_level: str = Field(default="info", description="every process's logging level")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    projector: ProjectorSettings = Field(default_factory=ProjectorSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    phase: PhaseSettings = Field(default_factory=PhaseSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    fault: FaultSettings = Field(default_factory=FaultSettings)
    traces: TracesSettings = Field(default_factory=TracesSettings)

    @classmethod
    def environment_names(cls) -> dict[str, str]:
        """Every variable the settings read, and the attribute it sets:
        {"KAFKA_BOOTSTRAP_SERVERS": "kafka.bootstrap_servers", ...}."""
        names: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            group = info.annotation
            if isinstance(group, type) and issubclass(group, Group):
                names |= {f"{name}_{f}".upper(): f"{name}.{f}" for f in group.model_fields}
            else:
                names[name.upper()] = name
        return names

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed, a group's as a mapping:
        `replace(kafka={"topic_partitions": 6})`. Not validated (as `model_copy`)."""
        return self.model_copy(update={k: self._changed(k, v) for k, v in changes.items()})

    def _changed(self, name: str, value: object) -> object:
        current = getattr(self, name)
        if isinstance(current, Group) and isinstance(value, Mapping):
            return current.model_copy(update=dict(value))
        return value


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides on top
    (a group's as a mapping, merged with its variables)."""
    return Settings(**overrides)  # type: ignore[arg-type]

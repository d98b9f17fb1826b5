"""The settings: every variable lands in its group, secrets never print, the
README's table is the model's, and every process logs at LOG_LEVEL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from config import Settings, load_settings
from config.connections import UnknownConnection
from config.reference import in_readme, reference

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ("kafka", "database", "api", "projector", "worker", "phase", "ops", "fault", "traces")
PASSWORD = "hunter2-not-for-logs"

ENVIRONMENT = {
    "LOG_LEVEL": "debug",
    "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
    "KAFKA_TOPIC_PREFIX": "t.",
    "KAFKA_TOPIC_PARTITIONS": "12",
    "KAFKA_TOPIC_REPLICATION_FACTOR": "3",
    "KAFKA_APP_ID": "app",
    "DATABASE_URL": f"postgresql://owner:{PASSWORD}@db/rm",
    "DATABASE_POOL_MAX": "4",
    "API_HOST": "0.0.0.0",
    "API_PORT": "9000",
    "API_MAX_BODY_BYTES": "2048",
    "API_DATABASE_URL": f"postgresql://reader:{PASSWORD}@replica/rm",
    "API_DATABASE_USER": "reader",
    "API_AUTH": "none",
    "API_TOKENS": json.dumps({PASSWORD: "viewer"}),
    "API_TOKENS_FILE": "/run/tokens.json",
    "API_TOKEN": PASSWORD,
    "API_RATE_PER_SECOND": "7.5",
    "API_RATE_BURST": "9",
    "API_LIVE_MAX_CLIENTS": "11",
    "API_LIVE_PER_CLIENT": "5",
    "API_LIVE_OPERATOR_RESERVE": "3",
    "API_OFFLOAD_WORKERS": "6",
    "API_CLIENT_CONCURRENCY": "4",
    "API_HEADER_SECONDS": "12.5",
    "API_BODY_SECONDS": "8",
    "API_COMMANDS_IN_FLIGHT": "300",
    "API_COMMANDS_MAX_LAG_SECONDS": "0.25",
    "PROJECTOR_BATCH_MAX": "50",
    "PROJECTOR_METRICS_PORT": "9103",
    "PROJECTOR_DB_OUTAGE_SECONDS": "45",
    "WORKER_ID": "w-1",
    "WORKER_PROCESSING_GUARANTEE": "at_least_once",
    "WORKER_METRICS_PORT": "9101",
    "WORKER_COMMIT_INTERVAL_SECONDS": "1.5",
    "WORKER_TRANSACTION_TIMEOUT_MS": "20000",
    "WORKER_SESSION_TIMEOUT_MS": "7000",
    "WORKER_MAX_POLL_INTERVAL_MS": "30000",
    "WORKER_STATE_RETENTION_SECONDS": "3600",
    "PHASE_CONNECTIONS": json.dumps(
        {"legacy": {"host": "db1", "database": "crm", "user": "r", "password": PASSWORD}}
    ),
    "PHASE_WORKER_ID": "p-1",
    "PHASE_METRICS_PORT": "9102",
    "PHASE_CONCURRENCY": "3",
    "PHASE_POOL_MAX": "5",
    "PHASE_RETRY_ATTEMPTS": "2",
    "PHASE_RETRY_BUDGET_SECONDS": "45",
    "PHASE_RETRY_MAX_SECONDS": "1.25",
    "PHASE_POOL_TIMEOUT_SECONDS": "4",
    "PHASE_STATEMENT_TIMEOUT_SECONDS": "60",
    "PHASE_VALIDATION_TIMEOUT_SECONDS": "20",
    "PHASE_PROGRESS_INTERVAL_SECONDS": "0",
    "PHASE_SNAPSHOT_LEASE_SECONDS": "90",
    "PHASE_SNAPSHOT_KEEPER_MIN_BYTES": "0",
    "PHASE_BREAKER_FAILURE_THRESHOLD": "8",
    "PHASE_BREAKER_RESET_SECONDS": "2.5",
    "OPS_DLQ_MAX_ATTEMPTS": "6",
    "OPS_METRICS_INTERVAL_SECONDS": "3",
    "FAULT_WORKER": "kill_after_commit",
    "FAULT_WORKER_BATCH": "4",
    "FAULT_PROJECTOR": "kill_before_commit",
    "FAULT_PROJECTOR_BATCH": "5",
    "TRACES_ENDPOINT": "http://jaeger:4318",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of ours from the outside, and no `.env` but the test's own."""
    for name in list(os.environ):
        if name.upper() in Settings.environment_names() or name.split("_")[0] in GROUPS:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_every_variable_lands_in_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)

    s = load_settings()

    assert s.log_level == "debug"
    assert (s.kafka.bootstrap_servers, s.kafka.topic_prefix, s.kafka.app_id) == (
        "k1:9092,k2:9092",
        "t.",
        "app",
    )
    assert (s.kafka.topic_partitions, s.kafka.topic_replication_factor) == (12, 3)
    assert s.database.url.get_secret_value() == ENVIRONMENT["DATABASE_URL"]
    assert s.database.pool_max == 4
    api = s.api
    assert (api.host, api.port, api.max_body_bytes, api.database_user) == (
        "0.0.0.0",
        9000,
        2048,
        "reader",
    )
    assert api.database_url is not None and api.tokens is not None and api.token is not None
    assert api.database_url.get_secret_value() == ENVIRONMENT["API_DATABASE_URL"]
    assert json.loads(api.tokens.get_secret_value()) == {PASSWORD: "viewer"}
    assert (api.auth, api.tokens_file, api.token.get_secret_value()) == (
        "none",
        Path("/run/tokens.json"),
        PASSWORD,
    )
    assert (api.rate_per_second, api.rate_burst, api.live_max_clients) == (7.5, 9, 11)
    assert (api.live_per_client, api.live_operator_reserve) == (5, 3)
    assert (api.offload_workers, api.client_concurrency) == (6, 4)
    assert (api.header_seconds, api.body_seconds) == (12.5, 8.0)
    assert (api.commands_in_flight, api.commands_max_lag_seconds) == (300, 0.25)
    assert (s.projector.batch_max, s.projector.metrics_port) == (50, 9103)
    w = s.worker
    assert (w.id, w.processing_guarantee, w.metrics_port) == ("w-1", "at_least_once", 9101)
    assert (w.commit_interval_seconds, w.transaction_timeout_ms, w.session_timeout_ms) == (
        1.5,
        20000,
        7000,
    )
    assert w.max_poll_interval_ms == 30000
    assert w.state_retention_seconds == 3600
    p = s.phase
    assert p.connection("legacy").describe() == "r@db1:5432/crm"
    assert p.connection("legacy").secret() == PASSWORD
    assert (p.worker_id, p.metrics_port, p.concurrency, p.pool_max) == ("p-1", 9102, 3, 5)
    assert (p.retry_attempts, p.retry_max_seconds, p.pool_timeout_seconds) == (2, 1.25, 4.0)
    assert p.retry_budget_seconds == 45.0
    assert (p.statement_timeout_seconds, p.progress_interval_seconds) == (60.0, 0.0)
    assert p.snapshot_lease_seconds == 90.0
    assert p.snapshot_keeper_min_bytes == 0
    assert (p.breaker_failure_threshold, p.breaker_reset_seconds) == (8, 2.5)
    assert (s.ops.dlq_max_attempts, s.ops.metrics_interval_seconds) == (6, 3.0)
    assert (s.fault.worker, s.fault.worker_batch) == ("kill_after_commit", 4)
    assert s.traces.endpoint == "http://jaeger:4318"
    assert (s.fault.projector, s.fault.projector_batch) == ("kill_before_commit", 5)


def test_the_environment_names_are_exactly_the_fields() -> None:
    names = Settings.environment_names()

    assert set(names) == set(ENVIRONMENT) | {"PHASE_CONNECTIONS_FILE"}
    assert names["KAFKA_BOOTSTRAP_SERVERS"] == "kafka.bootstrap_servers"
    assert names["WORKER_ID"] == "worker.id" and names["LOG_LEVEL"] == "log_level"


def test_a_secret_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)

    s = load_settings()

    for shown in (str(s), repr(s), s.model_dump_json(), str(s.model_dump()), repr(s.api)):
        assert PASSWORD not in shown


def test_defaults_bounds_and_frozen_groups() -> None:
    s = load_settings()

    assert (s.kafka.bootstrap_servers, s.kafka.topic_partitions, s.api.port) == (
        "127.0.0.1:39092",
        6,
        8088,
    )
    assert (s.worker.processing_guarantee, s.phase.connections, s.log_level) == (
        "exactly_once",
        {},
        "info",
    )
    with pytest.raises(ValidationError, match=r"kafka\.topic_partitions"):
        load_settings(kafka={"topic_partitions": 0})
    with pytest.raises(ValidationError, match=r"worker\.id"):
        load_settings(worker={"id": "not an id!"})
    with pytest.raises(ValidationError):
        s.kafka.app_id = "other"  # type: ignore[misc]


def test_keywords_merge_with_the_environment_group_by_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "from-env.")
    monkeypatch.setenv("KAFKA_APP_ID", "from-env")

    s = Settings(kafka={"app_id": "given"})  # type: ignore[arg-type]

    assert (s.kafka.topic_prefix, s.kafka.app_id) == ("from-env.", "given")


def test_replace_changes_fields_of_groups_and_keeps_the_rest() -> None:
    s = load_settings(kafka={"app_id": "a", "topic_prefix": "p."})

    copy = s.replace(
        kafka={"topic_partitions": 9}, api={"tokens": SecretStr("x")}, log_level="debug"
    )

    assert (copy.kafka.app_id, copy.kafka.topic_prefix, copy.kafka.topic_partitions) == (
        "a",
        "p.",
        9,
    )
    assert copy.api.tokens == SecretStr("x") and copy.log_level == "debug"
    assert s.kafka.topic_partitions == 6 and s.api.tokens is None


def test_the_connections_file_is_merged_under_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "connections.json"
    path.write_text(
        json.dumps(
            {
                "legacy": {"host": "from-file", "database": "crm", "user": "r"},
                "warehouse": {"database": "dwh", "user": "w"},
            }
        )
    )
    monkeypatch.setenv("PHASE_CONNECTIONS_FILE", str(path))
    monkeypatch.setenv(
        "PHASE_CONNECTIONS", json.dumps({"legacy": {"database": "crm", "user": "r"}})
    )

    phase = load_settings().phase

    assert phase.connection("legacy").host == "127.0.0.1"  # the variable wins
    assert phase.connection("warehouse").describe() == "w@127.0.0.1:5432/dwh"
    with pytest.raises(UnknownConnection, match="no connection named 'nowhere'"):
        phase.connection("nowhere")


def test_a_dot_env_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "KAFKA_APP_ID=from-file\nPHASE_CONCURRENCY=4\n"
        'PHASE_CONNECTIONS={"legacy": {"database": "crm", "user": "r"}}\n'
    )
    monkeypatch.setenv("PHASE_CONCURRENCY", "5")

    s = load_settings()

    assert (s.kafka.app_id, s.phase.concurrency) == ("from-file", 5)
    assert s.phase.connection("legacy").database == "crm"


def test_a_variable_named_as_a_group_alone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULT", "kill_after_produce")  # the name before the groups

    with pytest.raises(ValueError, match='field "fault"'):
        load_settings()


def test_the_readme_lists_exactly_the_settings() -> None:
    assert in_readme(ROOT / "README.md") == reference(), "run: python -m config.reference"


@pytest.mark.parametrize(
    "code",
    [
        "from config.logs import configure_logging; configure_logging(load_settings())",
        "from cli.main import _logging; _logging()",
    ],
)
def test_logging_follows_log_level(code: str) -> None:
    script = f"import logging; from config import load_settings; {code}\n"
    script += "print(logging.getLogger().level)"
    env = {**os.environ, "LOG_LEVEL": "debug", "PYTHONPATH": str(ROOT)}

    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "10"

"""A StartMigration goes through every real part: Kafka, the orchestrator
worker, the projector, PostgreSQL and the API, each its own OS process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import KafkaNames, Settings
from tests.support.processes import ROOT, Processes, eventually, group_is_stable
from tests.support.stack import Stack
from tests.support.system import (
    SPEC,
    api_http,
    api_url,
    console_produce,
    migration,
    running_system,
    send_commands,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def system(settings: Settings, topics: KafkaNames, tmp_path: Path) -> Iterator[Processes]:
    with running_system(settings, topics, tmp_path) as procs:
        yield procs


def console_consume(stack: Stack, topic: str, count: int) -> str:
    done = subprocess.run(
        [
            str(ROOT / "scripts/kafka/console-consumer"),
            "--bootstrap-server",
            stack.kafka_bootstrap,
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            str(count),
            "--timeout-ms",
            "60000",
            "--formatter-property",
            "print.headers=true",
            "--consumer-property",
            "isolation.level=read_committed",
        ],
        capture_output=True,
        text=True,
        errors="replace",  # Spring's partition/offset/timestamp headers are binary integers
        check=True,
        timeout=120,
    )
    return done.stdout


def test_a_migration_posted_over_http_shows_up_in_the_read_model(
    settings: Settings, system: Processes
) -> None:
    status, created = api_http("POST", f"{api_url(settings)}/migrations", {"spec": SPEC})

    assert status == 202
    shown = eventually(lambda: migration(settings, created["migration_id"]))
    assert shown["status"] == "RUNNING"
    assert shown["spec"]["source_table"] == "customers"
    _, history = api_http("GET", f"{api_url(settings)}/migrations/{created['migration_id']}/events")
    assert [(e["type"], e["causation_id"]) for e in history["events"]] == [
        ("MigrationStarted", created["command_id"]),
        ("PhaseRequested", created["command_id"]),
    ]
    assert (shown["version"], shown["phase"]) == (2, "extract")


def test_a_keyless_json_line_from_the_stock_console_producer_is_handled(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    command = {
        "type": "StartMigration",
        "command_id": "c-console",
        "migration_id": "m-console",
        "spec": SPEC,
    }

    console_produce(stack, topics.commands, [json.dumps(command)])

    shown = eventually(lambda: migration(settings, "m-console"))
    assert shown["status"] == "RUNNING"


def test_a_repeated_command_has_no_second_effect(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    first = {"type": "StartMigration", "command_id": "c-1", "migration_id": "m-dup", "spec": SPEC}
    other = {**first, "command_id": "c-2"}
    send_commands(stack, topics, first, first, other)

    # Keyed records keep their order: once c-2 shows, the repeat of c-1 was handled.
    eventually(lambda: migration(settings, "m-dup").get("version") == 3)
    _, history = api_http("GET", f"{api_url(settings)}/migrations/m-dup/events")
    assert [(e["type"], e["causation_id"]) for e in history["events"]] == [
        ("MigrationStarted", "c-1"),
        ("PhaseRequested", "c-1"),
        ("CommandRejected", "c-2"),
    ]


def test_a_malformed_line_goes_to_the_dead_letter_topic_and_the_worker_goes_on(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    good = {
        "type": "StartMigration",
        "command_id": "c-after",
        "migration_id": "m-after",
        "spec": SPEC,
    }

    console_produce(stack, topics.commands, ["this is not json", json.dumps(good)])

    dead = console_consume(stack, topics.dlq(topics.commands), 1)
    assert "kafka_dlt-exception-fqcn:schemas.exceptions.RecordError" in dead
    assert f"kafka_dlt-original-topic:{topics.commands}" in dead
    assert dead.rstrip().endswith("this is not json")
    assert eventually(lambda: migration(settings, "m-after"))


def test_bad_http_input_gets_a_4xx_that_says_why(settings: Settings, system: Processes) -> None:
    base = api_url(settings)

    assert api_http("POST", f"{base}/migrations", {"spec": {**SPEC, "batch_size": 0}})[0] == 422
    assert api_http("POST", f"{base}/migrations", {"nope": 1})[0] == 422
    status, body = api_http("GET", f"{base}/migrations/m-missing")
    assert (status, body["title"]) == (404, "no migration 'm-missing'")


def test_an_idempotency_key_gives_the_same_ids_and_one_effect(
    settings: Settings, system: Processes
) -> None:
    key = {"Idempotency-Key": "order-42"}
    url = f"{api_url(settings)}/migrations"
    first = api_http("POST", f"{url}?wait=true", {"spec": SPEC}, key)[1]
    second = api_http("POST", url, {"spec": SPEC}, key)[1]
    mid = first["migration_id"]
    third = api_http("POST", url, {"spec": SPEC, "migration_id": mid})[1]

    assert (second["migration_id"], second["command_id"]) == (mid, first["command_id"])
    eventually(lambda: migration(settings, mid).get("version") == 3)
    _, history = api_http("GET", f"{url}/{mid}/events")
    assert [e["causation_id"] for e in history["events"]] == [
        first["command_id"],
        first["command_id"],
        third["command_id"],
    ]


def test_a_restarted_worker_recovers_the_state_from_its_changelog(
    settings: Settings, topics: KafkaNames, stack: Stack, system: Processes
) -> None:
    first = {"type": "StartMigration", "command_id": "c-1", "migration_id": "m-rec", "spec": SPEC}
    send_commands(stack, topics, first)
    eventually(lambda: migration(settings, "m-rec"))

    system.restart("worker")
    eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
    second = {**first, "command_id": "c-2"}
    send_commands(stack, topics, second)

    # Only a worker that recovered m-rec's state rejects a second start.
    eventually(lambda: migration(settings, "m-rec").get("version") == 3)
    _, history = api_http("GET", f"{api_url(settings)}/migrations/m-rec/events")
    assert history["events"][2]["type"] == "CommandRejected"

"""Dead letters for tests, written as the worker writes them, and the CLI as a
user runs it (in-process, with the test's settings as environment)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from confluent_kafka import Producer
from typer.testing import CliRunner

from cli.main import app
from config import Settings
from streams.kafka.clients import producer_config
from streams.kafka.consumed import Consumed
from streams.kafka.dead_letters import Origin, dead_letter_headers
from streams.kafka.reader import read_committed
from tests.support.processes import process_env


def write_dead_letters(
    settings: Settings,
    dlq: str,
    original: str,
    values: Sequence[bytes],
    attempts: int = 1,
    extra_headers: Sequence[tuple[str, bytes]] = (),
) -> None:
    """One dead letter per value, keyed `m-<i>`, from `original` offset i."""
    producer = Producer(producer_config(settings))
    for i, value in enumerate(values):
        error = ValueError(f"bad record {i}")
        headers: list[tuple[str, str | bytes | None]] = [
            *extra_headers,
            *dead_letter_headers(Origin(original, i % 3, i), error, "T", attempts),
        ]
        producer.produce(dlq, value, f"m-{i}".encode(), headers=headers)
    assert producer.flush(30) == 0


def records(settings: Settings, topic: str) -> list[Consumed]:
    return list(read_committed(settings, topic))


def migrator(settings: Settings, *args: str) -> tuple[int, str, str]:
    """Run `migrator args...`; (exit code, stdout, stderr)."""
    runner = CliRunner()
    result = runner.invoke(app, list(args), env=process_env(settings))
    return result.exit_code, result.stdout, result.stderr


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

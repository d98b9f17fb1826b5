"""Every CLI failure says what went wrong and exits non-zero."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.markup import escape

from ops.dead_letters import OperatorError

err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def operator_errors() -> Iterator[None]:
    """Turn the tools' errors (and Kafka's) into a message and exit code 1."""
    try:
        yield
    except OperatorError as exc:
        raise fail(str(exc)) from exc
    except KafkaException as exc:
        raise fail(f"Kafka: {exc.args[0].str() if exc.args else exc}") from exc
    except TimeoutError as exc:
        raise fail(f"timed out: {exc} (is Kafka running?)") from exc

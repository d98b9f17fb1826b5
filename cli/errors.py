"""Every CLI failure says what went wrong and exits non-zero.

Our own errors (the one tree, domain.errors) are caught once, around every
command, by the root group `Commands`: the message, exit code 1. Kafka's
errors and timeouts are turned into a message where the operator tools call
Kafka (`operator_errors`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from domain.errors import MigratorError

err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


class Commands(TyperGroup):
    """The root group: one of our errors from any command below it is its
    message and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context, not public
        try:
            return super().invoke(ctx)
        except MigratorError as exc:
            raise fail(str(exc)) from exc


@contextmanager
def operator_errors() -> Iterator[None]:
    """Turn Kafka's errors and timeouts into a message and exit code 1."""
    try:
        yield
    except KafkaException as exc:
        raise fail(f"Kafka: {exc.args[0].str() if exc.args else exc}") from exc
    except TimeoutError as exc:
        raise fail(f"timed out: {exc} (is Kafka running?)") from exc

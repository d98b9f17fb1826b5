"""`migrator dlq`: list, show, redrive and purge dead letters."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli.errors import err, fail, operator_errors
from config import load_settings
from ops.dead_letters import service
from ops.dead_letters.requests import PurgeRequest, RedriveRequest

app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, redrive, purge.")
out = Console()
Topic = Annotated[str, typer.Argument(help="a dead-letter topic, or the topic it belongs to")]
Request = TypeVar("Request", bound=BaseModel)


def _request(kind: type[Request], **options: Any) -> Request:
    """The options as the request they make; a bad value fails with its option named."""
    try:
        return kind.model_validate(options)
    except ValidationError as exc:
        said = [f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors()]
        raise fail("; ".join(said)) from exc


@app.command("list")
def list_letters(
    topic: Topic,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Every dead letter of a topic with its error headers (read_committed)."""
    settings = load_settings()
    with operator_errors():
        rows = service.list_dead_letters(settings, topic)
    if as_json:
        for row in rows:
            print(json.dumps(row), flush=True)
        return
    out.print(_table(service.dead_letter_topic(settings, topic), rows))


def _table(dlq: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{dlq}: {len(rows)} dead letters")
    for column in ("p:offset", "key", "from", "error", "attempts", "failed at", "redriven"):
        table.add_column(column)
    for r in rows:
        origin = f"{r['original_topic']} {r['original_partition']}:{r['original_offset']}"
        error = f"{(r['error_class'] or '').rsplit('.', 1)[-1]}: {r['error_message']}"
        table.add_row(
            f"{r['partition']}:{r['offset']}", str(r["key"]), origin, error[:80],
            str(r["attempts"]), str(r["failed_at"]), "yes" if r["redriven"] else "",
        )  # fmt: skip
    return table


@app.command()
def show(topic: Topic, partition: int, offset: int) -> None:
    """One dead letter: its error headers and its original value, decoded."""
    settings = load_settings()
    with operator_errors():
        letter = service.show_dead_letter(settings, topic, partition, offset)
    print(json.dumps(letter, indent=2, default=str))


@app.command()
def redrive(
    topic: Topic,
    everything: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
    offset: Annotated[
        list[str] | None, typer.Option(help="partition:offset of one record (repeatable)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="show what would be redriven, do nothing")] = False,
    rate: Annotated[float | None, typer.Option(help="at most this many records/s")] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many records")] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(help="refuse records that failed this often (OPS_DLQ_MAX_ATTEMPTS)"),
    ] = None,
) -> None:
    """Send dead letters back to their original topic, exactly once (after a fix).

    Key, value and original headers are kept. Ctrl-C stops after the batch in
    flight; running the same command again redrives only what is left."""
    request = _request(
        RedriveRequest, everything=everything, offsets=offset or [], dry_run=dry_run,
        limit=limit, rate=rate, max_attempts=max_attempts,
    )  # fmt: skip
    settings = load_settings()
    with operator_errors():
        plan = service.preview_redrive(settings, topic, request)
        _show_preview(plan.preview(), plan.problems())
        if request.dry_run:
            print(json.dumps(plan.preview(), indent=2))
            return
        if (why := service.refusal(plan, request)) is not None:
            raise fail("nothing redriven: " + why)
        with _progress(len(plan.ready)) as (progress, stop):
            result = service.redrive(settings, topic, request, progress=progress, stop=stop)
    print(json.dumps({**_counts(result.plan.preview()), "redriven": result.redriven}))
    if result.cancelled:
        raise fail(f"cancelled after {result.redriven} records; run it again to go on", 130)


def _show_preview(preview: dict[str, Any], problems: list[str]) -> None:
    err.print(
        f"{preview['dlq']}: {preview['to_redrive']} to redrive, "
        f"{preview['already_redriven']} already redriven, "
        f"{preview['refused_max_attempts']} refused (max attempts), "
        f"{preview['unroutable']} without an original topic"
    )
    for sample in preview["sample"]:
        err.print(f"  e.g. {json.dumps(sample)}", markup=False, highlight=False)
    for problem in problems:
        err.print(f"  {problem}", markup=False, highlight=False)


def _counts(preview: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in preview.items() if k not in ("sample", "refusals")}


@contextmanager
def _progress(total: int) -> Iterator[tuple[Any, threading.Event]]:
    """A progress bar, and a stop flag that Ctrl-C sets (the batch in flight ends)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    columns = (TextColumn("redrive"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err) as bar:
            task = bar.add_task("redrive", total=total)
            yield (lambda done: bar.update(task, completed=done)), stop
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command("purge")
def purge_letters(
    topic: Topic,
    everything: Annotated[bool, typer.Option("--all", help="every record read now")] = False,
    before: Annotated[
        list[str] | None, typer.Option(help="partition:offset: delete that partition below it")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="really delete (no undo)")] = False,
) -> None:
    """Delete dead letters for good (Kafka DeleteRecords), after a preview."""
    request = _request(PurgeRequest, everything=everything, before=before or [], confirm=yes)
    settings = load_settings()
    with operator_errors():
        outcome = service.purge_dead_letters(settings, topic, request)
    plan = outcome.plan
    if not outcome.confirmed:
        err.print(
            f"{plan.dlq}: {plan.records} dead letters would be deleted (before {plan.before})"
        )
        raise fail("nothing deleted: add --yes to delete them")
    err.print(f"{plan.dlq}: {plan.records} dead letters deleted (before {plan.before})")
    print(
        json.dumps(
            {"dlq": plan.dlq, "deleted": outcome.deleted, "first_offsets": outcome.first_offsets}
        )
    )

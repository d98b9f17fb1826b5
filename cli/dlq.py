"""`migrator dlq`: list, show, redrive and purge dead letters."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli.errors import err, fail, operator_errors
from config import KafkaNames, Settings, load_settings
from ops.dead_letters import (
    Redrive,
    Selection,
    dlq_topic,
    parse_before,
    parse_positions,
    plan_purge,
    plan_redrive,
    purge,
    read_letter,
    read_letters,
)
from ops.dead_letters.ledger import redriven_positions
from ops.dead_letters.show import describe

app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, redrive, purge.")
out = Console()
Topic = Annotated[str, typer.Argument(help="a dead-letter topic, or the topic it belongs to")]


def _context() -> tuple[Settings, KafkaNames]:
    settings = load_settings()
    return settings, KafkaNames(app_id=settings.app_id, prefix=settings.topic_prefix)


@app.command("list")
def list_letters(
    topic: Topic,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Every dead letter of a topic with its error headers (read_committed)."""
    settings, names = _context()
    dlq = dlq_topic(names, topic)
    with operator_errors():
        letters = list(read_letters(settings, dlq))
        done = redriven_positions(settings, dlq)
    rows = [{**letter.summary(), "redriven": letter.position in done} for letter in letters]
    if as_json:
        for row in rows:
            print(json.dumps(row), flush=True)
        return
    out.print(_table(dlq, rows))


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
    settings, names = _context()
    dlq = dlq_topic(names, topic)
    with operator_errors():
        letter = read_letter(settings, dlq, partition, offset)
    print(json.dumps(describe(letter, names), indent=2, default=str))


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
        int | None, typer.Option(help="refuse records that failed this often (DLQ_MAX_ATTEMPTS)")
    ] = None,
) -> None:
    """Send dead letters back to their original topic, exactly once (after a fix).

    Key, value and original headers are kept. Ctrl-C stops after the batch in
    flight; running the same command again redrives only what is left."""
    settings, names = _context()
    dlq = dlq_topic(names, topic)
    most = max_attempts or settings.dlq_max_attempts
    with operator_errors():
        selection = Selection(everything, parse_positions(offset or []), limit)
        plan = plan_redrive(settings, dlq, selection, most)
        _show_preview(plan.preview(), plan.problems())
        if dry_run:
            print(json.dumps(plan.preview(), indent=2))
            return
        if selection.positions and plan.problems():
            raise fail("nothing redriven: " + "; ".join(plan.problems()))
        with _progress(len(plan.ready)) as (progress, stop):
            result = Redrive(settings, dlq, rate=rate, stop=stop, progress=progress).run(
                selection, most
            )
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
    settings, names = _context()
    dlq = dlq_topic(names, topic)
    if everything == bool(before):
        raise fail("choose either every record (--all) or --before partition:offset")
    with operator_errors():
        cut = None if everything else parse_before(before or [])
        plan = plan_purge(dlq, read_letters(settings, dlq), cut)
        err.print(f"{dlq}: {plan.records} dead letters would be deleted (before {plan.before})")
        if not yes:
            raise fail("nothing deleted: add --yes to delete them")
        lows = purge(settings, plan)
    print(json.dumps({"dlq": dlq, "deleted": plan.records, "first_offsets": lows}))

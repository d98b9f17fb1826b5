"""Benchmark: migrations of one large table end to end, against the raw pipe.

    scripts/stack up
    .local/venv/bin/python scripts/bench/migration.py [--table wide|narrow] [--width N]
        [--rows 1000000] [--batch-size 10000] [--parallelism 2] [--phase-concurrency 8]
        [--json FILE]

In one run, on the same PostgreSQL, the same source table (`--table`: wide,
24 columns of mixed types, or narrow, the tests' 12-column customers; `--width N`
adds N text and numeric columns to either; see migration_tables.py) and the
same target database, one after the other:

a. pipe: `psql -c "COPY (SELECT * FROM t) TO STDOUT (FORMAT binary)" |
   psql -c "COPY pipe_t FROM STDIN (FORMAT binary)"` into an empty table of
   the same shape (primary key included): the limit of moving the rows at all
   in one stream;
b. copy-only: StartMigration with `mode: copy-only` (no mapping, no rules),
   through Kafka to an orchestrator worker and a phase worker (separate
   processes), until the event log says COMPLETED: extract copies the table's
   chunks side by side in one snapshot into a staging table without indexes,
   load builds the primary key and renames it into place, reconcile compares
   count and checksum with the chunks' (the other phases only record);
c. full pipeline: the same with a mapping that renames, casts, trims and
   cases, and drops a column, and three rules (min_score 0: scored, never
   failing).

Each migration gets a fresh orchestrator worker and phase worker, and its own
target table. Its time runs from sending StartMigration to the
MigrationCompleted event's timestamp (the same clock: one machine).

As each measurement ends (before anything is cleaned up) it prints rows/s,
the ratio to the pipe, the time of each phase (PhaseRequested to
PhaseCompleted; the rest is orchestration between phases) and the peak RSS of
the phase worker (VmHWM, read from /proc before it is stopped). `--json FILE`
writes the same figures. The databases are dropped last; a failure to clean
up is a warning after the figures, never a lost run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from cli.topics import create_topics  # noqa: E402
from config import KafkaNames, Settings, load_settings  # noqa: E402
from domain import Event, MigrationCompleted, PhaseCompleted, PhaseRequested  # noqa: E402
from scripts.bench.migration_tables import SHAPES, Shape, widened  # noqa: E402
from tests.support.data_plane import DataPlane, data_plane, spec  # noqa: E402
from tests.support.stack import drop_database  # noqa: E402
from tests.support.tables import connection_for  # noqa: E402

COPY_ONLY = "copy-only: mode copy-only (no mapping, no rules), chunks in one snapshot"
FULL = "full pipeline: renames, casts, trim + upper case, a dropped column, 3 rules"


class MeasurementFailed(Exception):
    """A measurement did not finish: the figures so far still print."""


@dataclass
class Measured:
    """One measurement's figures, as printed and written to --json."""

    key: str
    label: str
    seconds: float
    rows: int
    phases: dict[str, float] = field(default_factory=dict)
    outside_phases: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


@dataclass
class Run:
    """Everything one run measured and met, in the order it happened."""

    args: argparse.Namespace
    settings: Settings
    run_id: str
    measured: dict[str, Measured] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def admin(self) -> str:
        return self.settings.database.url.get_secret_value()

    def url(self, name: str) -> str:
        return make_conninfo(self.admin, dbname=name)

    def database(self, role: str) -> str:
        """A new database for `role`, dropped at the end."""
        name = f"bench_{role}_{self.run_id}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        self.databases.append(name)
        return self.url(name)


# -- a: the pipe ---------------------------------------------------------------


def pipe(shape: Shape, source: str, target: str, rows: int) -> Measured:
    table = f"pipe_{shape.table}"
    shape.create_empty(target, table)
    out = f"COPY (SELECT * FROM {shape.table}) TO STDOUT (FORMAT binary)"
    into = f"COPY {table} FROM STDIN (FORMAT binary)"
    started = time.perf_counter()
    reader = subprocess.Popen(_psql(source, out), stdout=subprocess.PIPE)
    writer = subprocess.run(_psql(target, into), stdin=reader.stdout, check=False)
    assert reader.stdout is not None
    reader.stdout.close()
    if reader.wait() or writer.returncode:
        raise MeasurementFailed(f"the pipe failed: psql exited {reader.returncode}, {writer}")
    label = "pipe: psql COPY TO STDOUT | psql COPY FROM STDIN, binary, one stream"
    return Measured("pipe", label, time.perf_counter() - started, rows)


def _psql(url: str, command: str) -> list[str]:
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command]


# -- b and c: migrations through the processes ---------------------------------


def migrate(run: Run, key: str, label: str, source: str, target: str, **parts: Any) -> None:
    """One migration (`parts`: mapping, rules, min_score) to COMPLETED, on
    a fresh orchestrator worker and phase worker, reported before they stop."""
    args, shape = run.args, shape_of(run.args)
    names = _names(run.settings)
    connections = {"legacy": connection_for(source), "warehouse": connection_for(target)}
    task = spec(
        source_table=shape.table,
        target_table=f"{key}_{shape.table}",
        batch_size=args.batch_size,
        parallelism=args.parallelism,
        **parts,
    )
    with tempfile.TemporaryDirectory() as logs:
        try:
            with data_plane(
                run.settings, names, Path(logs), connections, 1, _phase_env(args)
            ) as dp:
                _report(run, _until_completed(dp, key, label, task, args.rows, args.timeout))
        except AssertionError as exc:  # a process did not exit 0 when stopped
            if key not in run.measured:
                raise
            run.warnings.append(f"{key}: a worker did not stop cleanly: {str(exc)[:2000]}")


def _phase_env(args: argparse.Namespace) -> dict[str, str]:
    if args.phase_concurrency is None:
        return {}
    return {"PHASE_CONCURRENCY": str(args.phase_concurrency)}


def _until_completed(
    dp: DataPlane, key: str, label: str, task: Any, rows: int, timeout: float
) -> Measured:
    migration_id = f"bench-{key}"
    sent = datetime.now(UTC)
    dp.start(migration_id, task)
    state = dp.wait_for(migration_id, "COMPLETED", "FAILED", timeout=timeout)
    # Read before the processes stop: VmHWM is gone with the process.
    rss = {
        "phase worker": _peak_rss_mib(dp, "phase-0"),
        "orchestrator": _peak_rss_mib(dp, "worker"),
    }
    if state.status.value != "COMPLETED":
        raise MeasurementFailed(f"{key}: the migration failed: {state.reason}")
    events = dp.events()[migration_id]
    done = next(e for e in events if isinstance(e, MigrationCompleted))
    seconds = (datetime.fromisoformat(done.occurred_at) - sent).total_seconds()
    outside = outside_phases(events, sent)
    return Measured(key, label, seconds, rows, phase_times(events), outside, rss)


def _peak_rss_mib(dp: DataPlane, name: str) -> float:
    status = Path(f"/proc/{dp.procs.running[name].pid}/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024


def phase_times(events: list[Event]) -> dict[str, float]:
    """Each phase's last run: PhaseRequested to PhaseCompleted."""
    began: dict[str, datetime] = {}
    took: dict[str, float] = {}
    for event in events:
        at = datetime.fromisoformat(event.occurred_at)
        if isinstance(event, PhaseRequested):
            began[event.phase] = at
        elif isinstance(event, PhaseCompleted):
            took[event.phase] = (at - began[event.phase]).total_seconds()
    return took


def outside_phases(events: list[Event], sent: datetime) -> dict[str, float]:
    """Where the time outside the phases goes: from the command to the first
    phase's request, from each phase's completion to the next one's request,
    from the last completion to MigrationCompleted."""
    marks = [
        (type(e), datetime.fromisoformat(e.occurred_at))
        for e in events
        if isinstance(e, PhaseRequested | PhaseCompleted | MigrationCompleted)
    ]
    requested = [at for kind, at in marks if kind is PhaseRequested]
    completed = [at for kind, at in marks if kind is PhaseCompleted]
    gaps = [(r - c).total_seconds() for c, r in zip(completed, requested[1:], strict=False)]
    return {
        "command to first phase": (requested[0] - sent).total_seconds(),
        "between phases": sum(gaps),
        "last phase to completed": (marks[-1][1] - completed[-1]).total_seconds(),
    }


# -- printing ------------------------------------------------------------------


def _report(run: Run, m: Measured) -> None:
    run.measured[m.key] = m
    pipe_s = run.measured["pipe"].seconds if "pipe" in run.measured else None
    ratio = f"   {pipe_s / m.seconds:.2f} x the pipe's rows/s" if pipe_s and m.key != "pipe" else ""
    print(f"\n[{m.key}] {m.label}")
    print(f"  {m.seconds:10.2f} s {m.rows_per_s:12,.0f} rows/s{ratio}")
    for phase, seconds in m.phases.items():
        print(f"    {phase:28}{seconds:10.2f} s {m.rows / seconds:12,.0f} rows/s")
    if m.phases:
        inside = sum(m.phases.values())
        print(f"    {'(the 5 phases together)':28}{inside:10.2f} s {m.rows / inside:12,.0f} rows/s")
    for part, seconds in m.outside_phases.items():
        print(f"    {'(' + part + ')':28}{seconds:10.2f} s")
    for process, mib in m.peak_rss_mib.items():
        print(f"    peak RSS, {process}: {mib:,.0f} MiB")
    sys.stdout.flush()
    _write_json(run)


def _summary(run: Run) -> None:
    pipe_m = run.measured.get("pipe")
    print(f"\n{'':12}{'seconds':>10}{'rows/s':>12}{'x pipe':>8}{'phase worker peak':>19}")
    for m in run.measured.values():
        ratio = f"{pipe_m.seconds / m.seconds:8.2f}" if pipe_m else f"{'':8}"
        rss = m.peak_rss_mib.get("phase worker")
        peak = f"{rss:15,.0f} MiB" if rss else ""
        print(f"{m.key:12}{m.seconds:10.2f}{m.rows_per_s:12,.0f}{ratio}{peak}")
    for key, name in (("copy", "b/a"), ("full", "c/a")):
        if pipe_m and key in run.measured:
            print(f"ratio {name} (rows/s): {pipe_m.seconds / run.measured[key].seconds:.3f}")
    print(f"load average after: {_load()}")
    sys.stdout.flush()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _write_json(run: Run) -> None:
    if not run.args.json:
        return
    pipe_m = run.measured.get("pipe")
    figures = {
        "run": run.run_id,
        "at": datetime.now(UTC).isoformat(),
        "options": {k: v for k, v in vars(run.args).items() if k != "json"},
        "load_average": os.getloadavg(),
        "measurements": {
            k: {**asdict(m), "rows_per_s": m.rows_per_s} for k, m in run.measured.items()
        },
        "ratios": {
            f"{k}/pipe": pipe_m.seconds / m.seconds
            for k, m in run.measured.items()
            if pipe_m and k != "pipe"
        },
        "error": run.error,
        "warnings": run.warnings,
    }
    Path(run.args.json).write_text(json.dumps(figures, indent=2) + "\n")


# -- the run -------------------------------------------------------------------


def shape_of(args: argparse.Namespace) -> Shape:
    return widened(SHAPES[args.table], args.width)


def measure(run: Run) -> None:
    shape, rows = shape_of(run.args), run.args.rows
    source, target = run.database("src"), run.database("tgt")
    started = time.perf_counter()
    shape.fill(source, rows)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {shape.table}".encode())
    print(f"source: {rows:,} rows in {shape.table} in {time.perf_counter() - started:.1f} s")
    create_topics(run.settings)
    wanted = run.args.only.split(",")
    steps: dict[str, Callable[[], None]] = {
        "pipe": lambda: _report(run, pipe(shape, source, target, rows)),
        "copy": lambda: migrate(run, "copy", COPY_ONLY, source, target, mode="copy-only"),
        "full": lambda: migrate(
            run,
            "full",
            FULL,
            source,
            target,
            mapping=shape.mapping,
            rules=shape.rules,
            min_score=0.0,
        ),
    }
    for key, step in steps.items():
        if key in wanted:
            step()


def cleanup(run: Run) -> None:
    """Drop what the run made; what cannot be dropped becomes a warning."""
    for name in run.databases:
        try:
            _drop_patiently(run.admin, name)
        except Exception as exc:  # the figures matter more than the cleanup
            run.warnings.append(
                f"database {name} not dropped ({type(exc).__name__}: {exc});"
                f' drop it by hand: DROP DATABASE "{name}" WITH (FORCE)'
            )
    try:
        _delete_topics(run.settings)
    except Exception as exc:
        prefix = run.settings.kafka.topic_prefix
        run.warnings.append(f"the run's topics ({prefix}*) not all deleted: {exc}")


def _drop_patiently(admin: str, name: str, tries: int = 6) -> None:
    """drop_database waits ~20 s for an autovacuum worker to leave; a
    vacuum of a large table can take longer."""
    for attempt in range(tries):
        try:
            drop_database(admin, name)
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == tries - 1:
                raise


def _delete_topics(settings: Settings) -> None:
    """The run's own topics (its prefix and app id), on a shared broker."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    ours = {t.name for t in _names(settings).topic_specs(settings.kafka.topic_partitions)}
    there = ours & set(admin.list_topics(timeout=30).topics)
    for future in admin.delete_topics(sorted(there), operation_timeout=30).values():
        future.result()


def _names(settings: Settings) -> KafkaNames:
    return KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--table", choices=sorted(SHAPES), default="wide")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--width",
        type=int,
        default=0,
        help="N more columns (text and numeric by turns) on the table (default: 0)",
    )
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument(
        "--phase-concurrency", type=int, default=None, help="PHASE_CONCURRENCY (default: settings)"
    )
    parser.add_argument("--only", default="pipe,copy,full", help="a subset of pipe,copy,full")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--timeout", type=float, help="seconds one migration may take (default: 600 + rows/2000)"
    )
    args = parser.parse_args()
    args.timeout = args.timeout or 600 + args.rows / 2000
    return args


def main() -> int:
    args = options()
    base = load_settings()
    run_id = uuid.uuid4().hex[:8]
    settings = base.replace(kafka={"topic_prefix": f"bench{run_id}.", "app_id": f"bench-{run_id}"})
    run = Run(args, settings, run_id)
    concurrency = args.phase_concurrency or settings.phase.concurrency
    print(
        f"migration benchmark {run_id}: {args.table} table ({shape_of(args).columns} columns),"
        f" {args.rows:,} rows, batch {args.batch_size:,}, parallelism {args.parallelism},"
        f" phase concurrency {concurrency}, PostgreSQL"
        f" {conninfo_to_dict(run.admin).get('port')}, load average {_load()}"
    )
    try:
        measure(run)
    except Exception as exc:  # reported after the figures so far, then cleaned up
        run.error = f"{type(exc).__name__}: {str(exc)[:3000]}"
    finally:
        if run.measured:
            _summary(run)
        if run.error:
            print(f"\nERROR: {run.error}")
        _write_json(run)
        cleanup(run)
        for warning in run.warnings:
            print(f"warning: {warning}")
        _write_json(run)
    return 1 if run.error else 0


if __name__ == "__main__":
    sys.exit(main())

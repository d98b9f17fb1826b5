"""Benchmark: one migration of a large table end to end, against the raw pipe.

    scripts/stack up
    .local/venv/bin/python scripts/bench/migration.py [--rows 1000000] [--batch-size 10000]

In the same run, on the same PostgreSQL and the same source table:

- peer: `psql -c "COPY (SELECT * FROM customers) TO STDOUT (FORMAT binary)" |
  psql -c "COPY customers FROM STDIN (FORMAT binary)"` into an empty table of
  another database: the limit of moving the rows at all;
- ours: StartMigration through Kafka to an orchestrator worker and a phase
  worker (separate processes), extract, transform (identity mapping),
  validate (one rule), load (parallel upsert) and reconcile, until the event
  log says COMPLETED.

Prints rows/s of both, the ratio, and the time of each phase (from the
PhaseRequested and PhaseCompleted events).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from cli.topics import create_topics  # noqa: E402
from config import KafkaNames, Settings, load_settings  # noqa: E402
from domain import Event, MigrationCompleted, PhaseCompleted, PhaseRequested  # noqa: E402
from tests.support.data_plane import data_plane, spec  # noqa: E402
from tests.support.tables import (  # noqa: E402
    CUSTOMERS,
    connection_for,
    create_customers,
    fresh_database,
)


def pipe(source: str, target: str) -> float:
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(CUSTOMERS)
    out = "COPY (SELECT * FROM customers) TO STDOUT (FORMAT binary)"
    into = "COPY customers FROM STDIN (FORMAT binary)"
    started = time.perf_counter()
    subprocess.run(
        f'psql "{source}" -qc "{out}" | psql "{target}" -qc "{into}"',
        shell=True,
        check=True,
    )
    return time.perf_counter() - started


def ours(
    settings: Settings, source: str, target: str, batch: int, parallelism: int
) -> tuple[float, list[Event]]:
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    create_topics(settings)
    connections = {"legacy": connection_for(source), "warehouse": connection_for(target)}
    rules = ({"rule": "not_null", "column": "email"},)
    with (
        tempfile.TemporaryDirectory() as logs,
        data_plane(settings, names, Path(logs), connections) as plane,
    ):
        started = time.perf_counter()
        plane.start(
            "bench", spec(batch_size=batch, parallelism=parallelism, rules=rules, min_score=0.5)
        )
        state = plane.wait_for("bench", "COMPLETED", "FAILED", timeout=3600)
        elapsed = time.perf_counter() - started
        if state.status.value != "COMPLETED":
            raise SystemExit(f"the migration failed: {state.reason}")
        return elapsed, plane.events()["bench"]


def phase_times(events: list[Event]) -> dict[str, float]:
    began: dict[str, datetime] = {}
    took: dict[str, float] = {}
    for event in events:
        at = datetime.fromisoformat(event.occurred_at)
        if isinstance(event, PhaseRequested):
            began[event.phase] = at
        elif isinstance(event, PhaseCompleted):
            took[event.phase] = (at - began[event.phase]).total_seconds()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    base = load_settings()
    admin = base.database.url.get_secret_value()
    run = uuid.uuid4().hex[:8]
    settings = base.replace(kafka={"topic_prefix": f"bench{run}.", "app_id": f"bench-{run}"})
    print(
        f"migration benchmark {run}: {args.rows:,} rows, batch {args.batch_size:,},"
        f" parallelism {args.parallelism}, PostgreSQL {conninfo_to_dict(admin).get('port')}"
    )
    with (
        fresh_database(admin, f"bench_src_{run}") as source,
        fresh_database(admin, f"bench_pipe_{run}") as piped,
        fresh_database(admin, f"bench_tgt_{run}") as target,
    ):
        create_customers(source, args.rows)
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE customers")
        peer = pipe(source, piped)
        total, events = ours(settings, source, target, args.batch_size, args.parallelism)
    assert any(isinstance(e, MigrationCompleted) for e in events)
    print(f"{'':24}{'seconds':>10}{'rows/s':>12}")
    print(f"{'COPY | COPY pipe':24}{peer:10.2f}{args.rows / peer:12,.0f}")
    print(f"{'migration (5 phases)':24}{total:10.2f}{args.rows / total:12,.0f}")
    print(f"ratio migration/pipe: {peer / total:.2f}")
    for phase, seconds in phase_times(events).items():
        print(f"  {phase:22}{seconds:10.2f}{args.rows / seconds:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Micro-benchmark: encode + decode N events with each codec, in one process.

    .local/venv/bin/python scripts/bench/codec.py [--n 100000] [--repeat 3]

Compares our Avro codec, our JSON codec, plain json.dumps/loads of the same
dicts (no checks, no dataclasses), bare fastavro schemaless write/read of the
same datums (no framing, no dataclasses) and, only if it is installed, the
`avro` package. The events cycle through all 13 event types. Best of
--repeat runs; records/s counts one encode plus one decode as one record.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from domain import (
    CommandRejected,
    Event,
    MigrationCancelled,
    MigrationCompleted,
    MigrationFailed,
    MigrationPaused,
    MigrationPausing,
    MigrationResumed,
    MigrationRetried,
    MigrationSpec,
    MigrationStarted,
    PhaseCompleted,
    PhaseFailed,
    PhaseProgressRecorded,
    PhaseRequested,
)
from schemas import decode_event, encode
from schemas.avro import to_datum
from schemas.records import to_plain
from schemas.registry import REGISTRY

Run = Callable[[], int]  # returns the bytes it produced, as a sanity check


def events(n: int) -> list[Event]:
    """N events cycling through all 13 types, each with its own id and sequence."""
    spec = MigrationSpec(
        source_connection="legacy",
        source_table="customers",
        source_key="id",
        target_connection="warehouse",
        target_table="dim_customer",
        mapping={"id": "cid"},
    )
    env: dict[str, Any] = {
        "event_id": "m-1:1",
        "migration_id": "m-1",
        "sequence": 1,
        "occurred_at": "2026-03-01T12:00:00+00:00",
        "causation_id": "c-1",
    }
    templates: list[Event] = [
        MigrationStarted(**env, spec=spec),
        PhaseRequested(**env, phase="copy", run=1, checkpoint="id>0"),
        PhaseProgressRecorded(
            **env, phase="copy", rows_done=1500, rows_total=10_000, checkpoint="id>1500"
        ),
        PhaseCompleted(**env, phase="copy", rows_done=10_000, score=0.99),
        PhaseFailed(**env, phase="copy", reason="connection reset", checkpoint="id>4500"),
        MigrationPausing(**env, reason="maintenance"),
        MigrationPaused(**env, checkpoint="id>3000"),
        MigrationResumed(**env),
        MigrationRetried(**env),
        MigrationCompleted(**env),
        MigrationFailed(**env, reason="phase copy failed"),
        MigrationCancelled(**env, reason="wrong target"),
        CommandRejected(**env, command_type="ResumeMigration", reason="migration is RUNNING"),
    ]
    return [
        dataclasses.replace(templates[i % len(templates)], event_id=f"m-1:{i + 1}", sequence=i + 1)
        for i in range(n)
    ]


def ours(recs: Sequence[Event], fmt: str) -> Run:
    def run() -> int:
        size = 0
        for record in recs:
            value, headers = encode(record, fmt)  # type: ignore[arg-type]
            size += len(value)
            decode_event(value, headers)
        return size

    return run


def plain_json(recs: Sequence[Event]) -> Run:
    dicts = [to_plain(r) for r in recs]

    def run() -> int:
        size = 0
        for plain in dicts:
            value = json.dumps(plain, separators=(",", ":"), sort_keys=True).encode()
            size += len(value)
            json.loads(value)
        return size

    return run


def bare_fastavro(recs: Sequence[Event]) -> Run:
    pairs = [
        (REGISTRY.current[type(r).__name__].parsed, to_datum(r, REGISTRY.shapes)) for r in recs
    ]

    def run() -> int:
        size = 0
        for schema, datum in pairs:
            out = BytesIO()
            schemaless_writer(out, schema, datum)
            size += out.tell()
            out.seek(0)
            schemaless_reader(out, schema, None)
        return size

    return run


def avro_package(recs: Sequence[Event]) -> Run | None:
    try:
        import avro.io  # type: ignore[import-not-found]
        import avro.schema  # type: ignore[import-not-found]
    except ImportError:
        return None
    parse = {n: avro.schema.parse(s.canonical) for n, s in REGISTRY.current.items()}
    pairs = [(parse[type(r).__name__], to_datum(r, REGISTRY.shapes)) for r in recs]

    def run() -> int:
        size = 0
        for schema, datum in pairs:
            out = BytesIO()
            avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(out))
            size += out.tell()
            out.seek(0)
            avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(out))
        return size

    return run


def best(run: Run, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = run()
        times.append(time.perf_counter() - start)
    return min(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    recs = events(args.n)
    runs: dict[str, Run | None] = {
        "ours, Avro (single-object)": ours(recs, "avro"),
        "ours, JSON": ours(recs, "json"),
        "json.dumps/loads of dicts": plain_json(recs),
        "fastavro schemaless, bare": bare_fastavro(recs),
        "avro package": avro_package(recs),
    }
    results = {name: best(run, args.repeat) for name, run in runs.items() if run is not None}
    baseline = args.n / results["json.dumps/loads of dicts"][0]
    print(f"{args.n:,} events (13 types), encode + decode each, best of {args.repeat}")
    print(f"{'codec':28} {'records/s':>10} {'µs/record':>10} {'bytes/rec':>10} {'vs json':>8}")
    for name, run in runs.items():
        if run is None:
            print(f"{name:28} not installed: skipped")
            continue
        seconds, size = results[name]
        rate = args.n / seconds
        print(
            f"{name:28} {rate:10,.0f} {1e6 / rate:10.2f} {size / args.n:10.1f}"
            f" {rate / baseline:7.2f}x"
        )


if __name__ == "__main__":
    main()

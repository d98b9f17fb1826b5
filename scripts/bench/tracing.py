"""What the tracing helpers at the Kafka edge cost per record, off and on.

Per call, in one run: the bare work each helper wraps (copying a record's
headers; entering and leaving an empty `with`) against the helpers with
tracing off (the default) and on (the real SDK, spans handed to a batch
processor whose exporter drops them, so no network is measured). Prints
ns per call and the ratios to the bare work. It asserts nothing.

    .local/venv/bin/python scripts/bench/tracing.py [--calls N]
"""

from __future__ import annotations

import argparse
import contextlib
import timeit
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from streams.kafka import tracing

HEADERS = [("migrator-type", b"MigrationStarted"), ("migrator-schema", b"\x01" * 8)]
TRACED = [*HEADERS, ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
BARE_WITH = contextlib.nullcontext()


class Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def per_call(work: Callable[[], object], calls: int) -> float:
    """Nanoseconds per call, the best of five rounds."""
    return min(timeit.repeat(work, number=calls, repeat=5)) / calls * 1e9


def consume_one() -> None:
    with tracing.consumed("orchestrator migration.commands", TRACED):
        tracing.injected(HEADERS)


def bare_consume() -> None:
    with BARE_WITH:
        list(HEADERS)


def measure(calls: int) -> dict[str, float]:
    return {
        "headers of a produced record": per_call(lambda: tracing.injected(HEADERS), calls),
        "one consumed record (span + produce)": per_call(consume_one, calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    calls = parser.parse_args().calls
    bare = {
        "headers of a produced record": per_call(lambda: list(HEADERS), calls),
        "one consumed record (span + produce)": per_call(bare_consume, calls),
    }
    off = measure(calls)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped(), max_queue_size=1 << 16))
    tracing.use(provider)
    on = measure(calls // 10)
    tracing.use(None)
    provider.shutdown()
    print(f"{'':38} {'bare':>9} {'off':>9} {'on':>9} {'off/bare':>9} {'on/bare':>9}")
    for name, base in bare.items():
        print(
            f"{name:38} {base:8.0f}n {off[name]:8.0f}n {on[name]:8.0f}n"
            f" {off[name] / base:9.2f} {on[name] / base:9.2f}"
        )


if __name__ == "__main__":
    main()

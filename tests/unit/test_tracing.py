"""The trace context at the Kafka edge: carried in headers when tracing is on,
headers untouched when it is off (the real SDK, spans kept in memory)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streams.kafka import tracing

A_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
B_PARENT = "00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


def parent_id(span: ReadableSpan) -> str:
    assert span.parent is not None
    return f"{span.parent.span_id:016x}"


def trace_id(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}"


def traceparent(span: ReadableSpan) -> bytes:
    ctx = span.context
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}".encode()


def test_off_leaves_headers_as_they_are_and_makes_no_span() -> None:
    headers = [("migrator-type", b"StartMigration")]

    with tracing.consumed("orchestrator", [("traceparent", A_PARENT.encode())]):
        assert tracing.injected(headers) is headers

    assert not tracing.enabled()


def test_a_consumed_record_continues_its_trace_and_passes_it_on(
    spans: InMemorySpanExporter,
) -> None:
    received = [("migrator-type", b"StartMigration"), ("traceparent", A_PARENT.encode())]

    with tracing.consumed("orchestrator migration.commands", received):
        written = tracing.injected([("migrator-type", b"MigrationStarted")])

    (span,) = spans.get_finished_spans()
    assert trace_id(span) == A_PARENT.split("-")[1]
    assert parent_id(span) == A_PARENT.split("-")[2]
    assert dict(written)["traceparent"] == traceparent(span)
    assert [k for k, _ in written].count("traceparent") == 1


def test_a_record_without_a_trace_context_starts_a_new_trace(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.consumed("orchestrator migration.commands", [("migrator-type", b"x")]):
        pass

    (span,) = spans.get_finished_spans()
    assert span.parent is None


def test_injecting_replaces_the_context_a_record_carried(spans: InMemorySpanExporter) -> None:
    with tracing.span("dead-lettering"):
        written = tracing.injected([("traceparent", B_PARENT.encode()), ("k", None)])

    (span,) = spans.get_finished_spans()
    assert dict(written)["traceparent"] == traceparent(span)
    assert ("k", None) in written
    assert len(written) == 2


def test_a_batch_commits_in_one_span_per_trace(spans: InMemorySpanExporter) -> None:
    batch = [
        [("traceparent", A_PARENT.encode())],
        [("traceparent", B_PARENT.encode())],
        [("traceparent", A_PARENT.encode())],
        [("migrator-type", b"untraced")],
    ]

    async def commit() -> None:
        async with tracing.each_trace("projector commit", iter(batch)):
            await asyncio.sleep(0)

    asyncio.run(commit())

    found = spans.get_finished_spans()
    assert sorted(parent_id(s) for s in found) == sorted(
        p.split("-")[2] for p in (A_PARENT, B_PARENT)
    )
    assert all(s.attributes == {"batch.traces": 2} for s in found)


def test_work_started_under_an_attached_context_continues_its_trace(
    spans: InMemorySpanExporter,
) -> None:
    async def started() -> asyncio.Task[None]:
        with tracing.attached([("traceparent", A_PARENT.encode())]):
            return asyncio.ensure_future(tracing.within("phase extract", asyncio.sleep(0)))

    async def run() -> None:
        await (await started())

    asyncio.run(run())

    (span,) = spans.get_finished_spans()
    assert span.name == "phase extract"
    assert parent_id(span) == A_PARENT.split("-")[2]


def test_the_answer_names_the_trace(spans: InMemorySpanExporter) -> None:
    with tracing.consumed("api POST", [("traceparent", A_PARENT.encode())]):
        answer = tracing.trace_response()

    assert answer is not None
    assert answer.split("-")[1] == A_PARENT.split("-")[1]

"""Traces: OpenTelemetry spans, exported over OTLP/HTTP, with the W3C trace
context carried from process to process in Kafka record headers.

Off unless TRACES_ENDPOINT is set: then every helper here is a cheap no-op
(no header is scanned, no span object is made). On, a command's trace
follows it from the API (or from whoever wrote the record: one without a
`traceparent` header starts a new trace where it is read) through the
orchestrator, the phase tasks, the phase workers and their results, the
events, to the projector's commit and the API's answer.

The Kafka edge calls two things: `injected` on every record it writes (the
current span's context replaces any the record carried) and `consumed` /
`each_trace` around the handling of what it read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import TypeVar

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from config import Settings

T = TypeVar("T")
V = TypeVar("V", bytes, bytes | None)  # a header's value, as each Kafka client types it
Attributes = dict[str, str | int | float | bool]

TRACEPARENT, TRACESTATE = "traceparent", "tracestate"
EXPORT_EVERY_MS = 1000  # spans reach the backend about this soon after they end
_W3C = TraceContextTextMapPropagator()
_OFF: nullcontext[None] = nullcontext()
_tracer: Tracer | None = None  # None: tracing is off


def start(settings: Settings, service: str) -> None:
    """Export this process's spans as `service`, when TRACES_ENDPOINT is set.
    The provider flushes what is left when the process exits."""
    endpoint = settings.traces.endpoint
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_EVERY_MS))
    trace.set_tracer_provider(provider)
    use(provider)


def use(provider: TracerProvider | None) -> None:
    """Make spans with `provider` from now on (None: tracing off)."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("kafka-migrator")


def enabled() -> bool:
    return _tracer is not None


# --- the W3C context in headers ---------------------------------------------------------


def injected(headers: Sequence[tuple[str, V]]) -> list[tuple[str, V]]:
    """`headers` with the current span's context in place of any they carried;
    as they are when tracing is off or no span is current."""
    if _tracer is None:
        return headers if isinstance(headers, list) else list(headers)
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    if not carrier:
        return list(headers)
    out: list[tuple[str, V]] = [h for h in headers if h[0] not in (TRACEPARENT, TRACESTATE)]
    out.extend((k, v.encode()) for k, v in carrier.items())
    return out


def parent_in(headers: Iterable[tuple[str, bytes | None]]) -> Context:
    """The context a record's headers carry (an empty one: a new trace)."""
    carrier = {
        k: v.decode("latin-1")
        for k, v in headers
        if k in (TRACEPARENT, TRACESTATE) and v is not None
    }
    return _W3C.extract(carrier)


# --- spans ------------------------------------------------------------------------------


def consumed(
    name: str,
    headers: Iterable[tuple[str, bytes | None]],
    attributes: Attributes | None = None,
    kind: SpanKind = SpanKind.CONSUMER,
) -> AbstractContextManager[object]:
    """The current span while one consumed record (or request) is handled: a
    child of the context its headers carry, else the root of a new trace."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, parent_in(headers), kind, attributes)


def span(name: str, attributes: Attributes | None = None) -> AbstractContextManager[object]:
    """A child of the current span (a root when there is none)."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, attributes=attributes)


def within(name: str, work: Awaitable[T], attributes: Attributes | None = None) -> Awaitable[T]:
    """`work` awaited inside a span of its own (itself when tracing is off)."""
    if _tracer is None:
        return work
    return _within(_tracer, name, work, attributes)


async def _within(
    tracer: Tracer, name: str, work: Awaitable[T], attributes: Attributes | None
) -> T:
    with tracer.start_as_current_span(name, attributes=attributes):
        return await work


def note(**attributes: str | int | float | bool) -> None:
    """Add attributes to the current span (nothing when tracing is off)."""
    if _tracer is not None:
        trace.get_current_span().set_attributes(attributes)


def attached(headers: Iterable[tuple[str, bytes | None]]) -> AbstractContextManager[object]:
    """Make the context a record carries current, without a span of its own:
    the work started meanwhile (asyncio tasks copy it) continues its trace."""
    if _tracer is None:
        return _OFF
    return _attached(parent_in(headers))


@contextmanager
def _attached(parent: Context) -> Iterator[None]:
    token = context.attach(parent)
    try:
        yield
    finally:
        context.detach(token)


def each_trace(name: str, headers: Iterable[Iterable[tuple[str, bytes | None]]]) -> _Spans:
    """One span per distinct trace context among many records' `headers` (a
    batch of them), open together, sync or async: a batch that commits the
    work of many commands shows in each command's trace."""
    if _tracer is None:
        return _NO_SPANS
    return _Spans(_tracer, name, headers)


class _Spans:
    def __init__(
        self,
        tracer: Tracer | None,
        name: str,
        headers: Iterable[Iterable[tuple[str, bytes | None]]],
    ) -> None:
        self.tracer, self.name, self.headers = tracer, name, headers
        self.spans: list[Span] = []

    def __enter__(self) -> None:
        if self.tracer is None:
            return
        parents = {v for record in self.headers for k, v in record if k == TRACEPARENT}
        for traceparent in parents:
            parent = parent_in([(TRACEPARENT, traceparent)])
            self.spans.append(self.tracer.start_span(self.name, parent))
        for span_ in self.spans:
            span_.set_attribute("batch.traces", len(self.spans))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for span_ in self.spans:
            if error is not None:
                span_.record_exception(error)
                span_.set_status(trace.StatusCode.ERROR, str(error))
            span_.end()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(kind, error, traceback)


_NO_SPANS = _Spans(None, "", ())


def trace_response() -> str | None:
    """The current span as a `traceresponse` header value (W3C Trace Context
    level 2): the caller learns which trace to open. None when off."""
    if _tracer is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"

"""`migrator trace <trace id>`: one trace from the trace backend, as a tree of
spans: which process did what, how long after the trace began, for how long."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from cli.errors import fail
from ops.traces import Span, read_trace

BackendUrl = Annotated[
    str, typer.Option(envvar="MIGRATOR_TRACES_URL", help="the trace backend's UI and API")
]
out = Console()


def trace(
    trace_id: str,
    backend: BackendUrl = "http://127.0.0.1:16686",
    as_json: Annotated[bool, typer.Option("--json", help="the spans as JSON lines")] = False,
) -> None:
    """Show one trace (its id: the `traceresponse` header of the API's answer)."""
    spans = read_trace(backend, trace_id)
    if not spans:
        raise fail(f"no trace {trace_id} at {backend} (yet: spans arrive within seconds)")
    if as_json:
        for span in sorted(spans, key=lambda s: s.start):
            print(json.dumps(asdict(span)))
        return
    out.print(tree_of(spans))


def tree_of(spans: list[Span]) -> Tree:
    """The spans under their parents, each level in the order they started."""
    began = min(s.start for s in spans)
    children: dict[str | None, list[Span]] = {}
    known = {s.id for s in spans}
    for span in sorted(spans, key=lambda s: s.start):
        parent = span.parent if span.parent in known else None  # one lost: shown at the top
        children.setdefault(parent, []).append(span)
    top = Tree(f"trace [bold]{len(spans)}[/bold] spans, {_ms(max(s.end for s in spans) - began)}")
    pending = [(top, span) for span in children.get(None, [])]
    while pending:
        branch, span = pending.pop(0)
        node = branch.add(_label(span, began))
        pending.extend((node, child) for child in children.get(span.id, []))
    return top


def _label(span: Span, began: int) -> str:
    return (
        f"[cyan]{escape(span.service)}[/cyan] {escape(span.name)}"
        f"  [dim]+{_ms(span.start - began)}[/dim]  {_ms(span.end - span.start)}"
    )


def _ms(microseconds: int) -> str:
    return f"{microseconds / 1000:.1f} ms"

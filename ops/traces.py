"""A trace as an operator reads it: the spans of one trace, fetched from the
trace backend's HTTP API (Jaeger's `/api/traces/<id>`), as plain data.
`migrator trace` renders it as a tree; the trace tests read it back."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ops.errors import TraceUnavailable


@dataclass(frozen=True)
class Span:
    id: str
    parent: str | None  # the span it is a child of (None: the trace's root)
    name: str
    service: str  # the process: migrator-api, -orchestrator, -phase-worker, -projector
    start: int  # µs since the epoch
    end: int
    tags: dict[str, Any]


def read_trace(backend: str, trace_id: str, timeout: float = 30.0) -> list[Span]:
    """The trace's spans as the backend holds them now ([]: it knows none)."""
    found = _get(f"{backend.rstrip('/')}/api/traces/{trace_id}", timeout)
    return [span for data in (found or {}).get("data") or [] for span in spans_of(data)]


def spans_of(data: dict[str, Any]) -> list[Span]:
    """The spans of one trace in Jaeger's JSON (its HTTP API's `data` items)."""
    services = {pid: p["serviceName"] for pid, p in data["processes"].items()}
    return [
        Span(
            id=s["spanID"],
            parent=next((r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"), None),
            name=s["operationName"],
            service=services[s["processID"]],
            start=s["startTime"],
            end=s["startTime"] + s["duration"],
            tags={t["key"]: t["value"] for t in s["tags"]},
        )
        for s in data["spans"]
    ]


def _get(url: str, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise TraceUnavailable(f"{url}: {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise TraceUnavailable(f"{url}: {exc} (is the trace backend running?)") from exc

"""A Jaeger all-in-one for the trace tests (scripts/install-jaeger builds it,
scripts/jaeger/server runs it, on free ports), and its traces read back from
its HTTP API as plain spans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ops.traces import Span, read_trace, spans_of
from tests.support.processes import ROOT, eventually
from tests.support.stack import free_port

BUILD_SECONDS = 1800  # a first build on two cores: minutes


class Unavailable(Exception):
    """The backend could not be built or started (the reason is the message)."""


@dataclass(frozen=True)
class Jaeger:
    otlp: str  # TRACES_ENDPOINT
    ui: str  # the UI and /api/traces

    def trace(self, trace_id: str) -> list[Span]:
        """The spans of one trace as stored now ([] while it is unknown)."""
        return read_trace(self.ui, trace_id)

    def traces(self, service: str, tags: dict[str, str]) -> list[list[Span]]:
        """The traces in which `service` made a span with these tags."""
        query = urllib.parse.urlencode({"service": service, "tags": json.dumps(tags)})
        with urllib.request.urlopen(f"{self.ui}/api/traces?{query}&limit=20", timeout=30) as resp:
            return [spans_of(data) for data in json.loads(resp.read())["data"] or []]


@contextmanager
def running_jaeger(logs: Path) -> Iterator[Jaeger]:
    """Build (when missing) and start Jaeger; Unavailable when it cannot be."""
    built = subprocess.run(
        [str(ROOT / "scripts/install-jaeger")],
        capture_output=True, text=True, timeout=BUILD_SECONDS,
    )  # fmt: skip
    if built.returncode != 0:
        raise Unavailable(f"scripts/install-jaeger failed: {built.stderr.strip()[-800:]}")
    ports = {
        name: str(free_port())
        for name in ("JAEGER_OTLP_PORT", "JAEGER_UI_PORT", "JAEGER_QUERY_GRPC_PORT")
    }
    log = logs / "jaeger.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts/jaeger/server"), "run"],
            env={**os.environ, **ports},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{ports['JAEGER_UI_PORT']}/api/services", log)
        yield Jaeger(
            otlp=f"http://127.0.0.1:{ports['JAEGER_OTLP_PORT']}",
            ui=f"http://127.0.0.1:{ports['JAEGER_UI_PORT']}",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            raise Unavailable(f"jaeger exited at start: {log.read_text()[-800:]}")
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)

    try:
        eventually(healthy, timeout=60)
    except AssertionError as exc:
        raise Unavailable(f"jaeger not healthy within 60 s: {log.read_text()[-800:]}") from exc

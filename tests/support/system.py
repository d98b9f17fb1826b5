"""The running system for end-to-end tests: start it, talk to it as a user does."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from config import KafkaNames, Settings
from tests.support.processes import ROOT, Processes, eventually, group_is_stable, http
from tests.support.stack import Stack, free_port

# The API's bearer tokens in the running system (configured as API_TOKENS).
OPERATOR_TOKEN = "e2e-operator-token-0123456789"
VIEWER_TOKEN = "e2e-viewer-token-0123456789"
API_ENV = {"API_TOKENS": json.dumps({OPERATOR_TOKEN: "operator", VIEWER_TOKEN: "viewer"})}
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}

SPEC = {
    "source_connection": "legacy",
    "source_table": "customers",
    "source_key": "id",
    "target_connection": "warehouse",
    "target_table": "customers",
}


@contextmanager
def running_system(
    settings: Settings,
    names: KafkaNames,
    logs: Path,
    simulator: bool = False,
    phase_seconds: float = 1.0,
) -> Iterator[Processes]:
    """Worker, projector and API (and the simulated phase worker) as processes;
    every one of them must exit 0 on SIGTERM at the end."""
    procs = Processes(settings, logs)
    try:
        procs.metrics_port = free_port()
        procs.start("worker", extra_env={"WORKER_METRICS_PORT": str(procs.metrics_port)})
        procs.start("projector")
        procs.start("api", extra_env=API_ENV)
        if simulator:
            procs.start("simulator", extra_env={"SIMULATED_PHASE_SECONDS": str(phase_seconds)})
        eventually(lambda: http("GET", f"http://127.0.0.1:{settings.api.port}/ready")[0] == 200)
        for group in (settings.kafka.app_id, names.projector_group):
            eventually(lambda g=group: group_is_stable(settings.kafka.bootstrap_servers, g), 180)
        for token in (OPERATOR_TOKEN, VIEWER_TOKEN):
            assert offer_as_subprotocol(settings, token) == 101
        yield procs
    except BaseException:
        procs.stop_all()
        raise
    codes = procs.stop_all()
    assert set(codes.values()) == {0}, {n: procs.log(n)[-3000:] for n in codes}
    leaked = {n: tokens_in(procs.log(n)) for n in codes}
    assert not any(leaked.values()), leaked


def token_forms(token: str) -> list[str]:
    """A token as it may be written: itself and its base64 forms."""
    encoded = [base64.urlsafe_b64encode(token.encode()), base64.b64encode(token.encode())]
    return [token, *(e.decode() for e in encoded), *(e.decode().rstrip("=") for e in encoded)]


def tokens_in(log: str) -> list[str]:
    """Which of the API's tokens a log holds, in any form (it must hold none)."""
    tokens = (OPERATOR_TOKEN, VIEWER_TOKEN)
    return [token for token in tokens if any(form in log for form in token_forms(token))]


def offer_as_subprotocol(settings: Settings, token: str) -> int:
    """A WebSocket handshake offering only the `bearer.<token>` subprotocol
    (the one a server would log as unmatched); its status."""
    protocol = "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    key = base64.b64encode(b"0123456789abcdef").decode()
    handshake = (
        "GET /api/v1/live HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", settings.api.port), timeout=30) as conn:
        conn.sendall(handshake.encode())
        return int(conn.recv(1024).split(b" ", 2)[1])


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.api.port}/api/v1"


def api_http(
    method: str, url: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """An API request with the operator's bearer token."""
    return http(method, url, body, {**AUTH, **(headers or {})})


def migration(settings: Settings, migration_id: str) -> dict[str, Any]:
    """The migration as the API shows it ({} while it is not visible)."""
    status, body = api_http("GET", f"{api_url(settings)}/migrations/{migration_id}")
    return body if status == 200 else {}


def console_produce(stack: Stack, topic: str, lines: list[str], keyed: bool = False) -> None:
    """Pipe lines into the stock console producer (`key|value` lines when keyed)."""
    keys = ["--reader-property", "parse.key=true", "--reader-property", "key.separator=|"]
    subprocess.run(
        [
            str(ROOT / "scripts/kafka/console-producer"),
            "--bootstrap-server",
            stack.kafka_bootstrap,
            "--topic",
            topic,
            *(keys if keyed else []),
        ],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=120,
    )


def send_commands(stack: Stack, names: KafkaNames, *commands: dict[str, object]) -> None:
    """JSON commands through the console producer, keyed by migration id."""
    lines = [f"{c['migration_id']}|{json.dumps(c)}" for c in commands]
    console_produce(stack, names.commands, lines, keyed=True)

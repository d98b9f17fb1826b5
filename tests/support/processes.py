"""Run the system's processes as a user does: separate OS processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "worker": [sys.executable, "-m", "streams", "worker"],
    "phase-worker": [sys.executable, "-m", "streams", "phase-worker"],
    "projector": [sys.executable, "-m", "projections"],
    "api": [sys.executable, "-m", "api"],
    "simulator": [sys.executable, "-m", "tests.support.phase_simulator"],
}


def process_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "WORKER_PROCESSING_GUARANTEE": settings.worker.processing_guarantee,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "DATABASE_URL": settings.database.url.get_secret_value(),
        "KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "KAFKA_TOPIC_PARTITIONS": str(settings.kafka.topic_partitions),
        "KAFKA_APP_ID": settings.kafka.app_id,
        "API_PORT": str(settings.api.port),
        "PYTHONUNBUFFERED": "1",
    }


class Processes:
    """Owns the processes it starts; stops them all with SIGTERM, then SIGKILL."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_port = 0

    def start(
        self, name: str, kind: str | None = None, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            COMMANDS[kind or name],
            cwd=ROOT,
            env={**process_env(self.settings), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no commit, nothing flushed."""
        proc = self.running[name]
        proc.kill()
        proc.wait(10)

    def freeze(self, name: str) -> None:
        """SIGSTOP: the process stalls (as in a long GC pause) without knowing."""
        self.running[name].send_signal(signal.SIGSTOP)

    def status(self, name: str) -> str:
        """The process state letter from /proc (R, S, T for stopped, Z...)."""
        stat = Path(f"/proc/{self.running[name].pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0]

    def thaw(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGCONT)

    def stop(self, name: str, grace: float = 20.0) -> int | None:
        return _terminate({name: self.running[name]}, grace)[name]

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Stop `name` with SIGTERM (it must exit 0) and start it again."""
        code = self.stop(name)
        assert code == 0, f"{name} exited with {code}: {self.log(name)[-3000:]}"
        return self.start(name)

    def stop_all(self, grace: float = 20.0) -> dict[str, int | None]:
        return _terminate(self.running, grace)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


def _terminate(procs: dict[str, subprocess.Popen[bytes]], grace: float) -> dict[str, int | None]:
    """SIGTERM to every live one at once, then each gets `grace` seconds to
    exit; one still there is SIGKILLed and reported as None."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            codes[name] = None
    return codes


def http(
    method: str, url: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def eventually(probe: Any, timeout: float = 90.0, every: float = 0.2) -> Any:
    """Call `probe` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (urllib.error.URLError, ConnectionError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"not reached within {timeout}s; last: {last!r}")


def group_is_stable(bootstrap: str, group: str, members: int = 1) -> bool:
    """True once `group` has at least `members` members with partitions assigned."""
    from confluent_kafka import ConsumerGroupState, KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        description = admin.describe_consumer_groups([group])[group].result(10)
    except (KafkaException, TimeoutError):  # the coordinator may not be there yet
        return False
    assigned = [m for m in description.members if m.assignment.topic_partitions]
    return description.state == ConsumerGroupState.STABLE and len(assigned) >= members

"""The system's processes under a real supervisord, as `scripts/demo` runs them:
a process that exits is restarted, and the tests can ask how often that was."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ROOT

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Program:
    command: tuple[str, ...]
    env: Mapping[str, str]


class Supervised:
    """supervisord over `programs`, its files in `home`; stop() shuts it down."""

    def __init__(self, home: Path, programs: Mapping[str, Program]) -> None:
        self.home, self.programs = home, programs
        self.conf = home / "supervisord.conf"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self._conf())
        subprocess.run([str(BIN / "supervisord"), "-c", str(self.conf)], check=True)

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout.strip()

    def pid(self, name: str) -> int:
        return int(self.ctl("pid", name) or 0)

    def restarts(self) -> dict[str, int]:
        """How often each program exited (and so was restarted), from supervisord's log."""
        text = (self.home / "supervisord.log").read_text(errors="replace")
        found = re.findall(r"exited: (\S+) \(", text)
        return {name: found.count(name) for name in self.programs if found.count(name)}

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        self.ctl("shutdown")
        for _ in range(300):
            if not (self.home / "supervisor.sock").exists():
                return
            time.sleep(0.1)

    def _conf(self) -> str:
        head = f"""[supervisord]
logfile={self.home}/supervisord.log
pidfile={self.home}/supervisord.pid
childlogdir={self.home}
directory={ROOT}

[unix_http_server]
file={self.home}/supervisor.sock

[supervisorctl]
serverurl=unix://{self.home}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""
        return head + "".join(self._program(n, p) for n, p in self.programs.items())

    def _program(self, name: str, program: Program) -> str:
        # The rest of the environment is supervisord's own, which it passes on.
        pairs = ",".join(f'{k}="{_quoted(v)}"' for k, v in program.env.items())
        return f"""
[program:{name}]
command={" ".join(program.command)}
environment={pairs}
autorestart=true
startsecs=2
startretries=1000
stopsignal=TERM
stopwaitsecs=30
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={self.home}/{name}.log
"""


def _quoted(value: str) -> str:
    if '"' in value or "\n" in value:
        raise ValueError(f"pass {value[:40]!r} in a file: supervisord's environment= cannot")
    return value.replace("%", "%%")

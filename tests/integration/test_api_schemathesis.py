"""Schemathesis (its `st` command) against the OpenAPI document the API
serves, with the worker, the projector and the API running as processes on the
real broker and database, once with an operator's token and once with a
viewer's: every check on (`--checks all`: no 5xx; status, content type, headers
and body as documented; schema-valid data accepted, invalid data refused; 405
with Allow; auth not ignored), in every phase. The size is
SCHEMATHESIS_MAX_EXAMPLES examples per operation and phase (default: what fits
CI's budget; a few thousand cases in all at 100). The counts are printed (run
pytest with -s to see them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from tests.support.processes import ROOT, Processes, eventually, group_is_stable, http
from tests.support.read_side import OPERATOR, TOKENS, VIEWER, fresh_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.integration
EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5")
PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = ROOT / "tests" / "support" / "schemathesis.toml"
ARTIFACTS = ROOT / ".local" / "artifacts"


@pytest.fixture(scope="module")
def settings_of_run(stack: Stack) -> Iterator[Settings]:
    with fresh_settings(stack) as settings:
        yield settings


@pytest.fixture(scope="module")
def running(settings_of_run: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = settings_of_run
    procs = Processes(settings, Path(tmp_path_factory.mktemp("schemathesis")))
    env = {
        "API_TOKENS": json.dumps(TOKENS),
        "API_RATE_PER_SECOND": "100000",
        "API_RATE_BURST": "100000",
    }
    try:
        procs.start("worker")
        procs.start("projector")
        procs.start("api", extra_env=env)
        url = f"http://127.0.0.1:{settings.api.port}"
        eventually(lambda: http("GET", f"{url}/ready")[0] == 200)
        eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
        yield url
    finally:
        codes = procs.stop_all()
    assert codes["api"] == 0, procs.log("api")[-3000:]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    running: str, tmp_path: Path, role: str
) -> None:
    report = tmp_path / "run.ndjson"
    output = ARTIFACTS / f"schemathesis-{role}.txt"
    token = OPERATOR if role == "operator" else VIEWER
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w") as out:
        done = subprocess.run(
            [
                str(ROOT / ".local/venv/bin/st"),
                "--config-file",
                str(CONFIG),
                "run",
                f"{running}/api/v1/openapi.json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {token}",
                "--max-examples",
                EXAMPLES,
                "--phases",
                PHASES,
                "--seed",
                "5",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(report),
            ],
            cwd=tmp_path,  # schemathesis keeps a cache in its working directory
            env={
                "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(ROOT),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=3500,
            check=False,
        )

    text = output.read_text()
    counted = re.search(r"(\d+) generated, (\d+) passed", text)
    print(f"schemathesis ({role}): {counted.group(0) if counted else 'no count'} ({output})")
    assert done.returncode == 0, text[-6000:]
    assert counted is not None and counted.group(1) == counted.group(2)

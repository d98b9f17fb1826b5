"""Schemathesis (its `st` command) against the OpenAPI document the API
serves, with the worker, the projector and the API running as processes on the
real broker and database: every generated request, valid or not, must get an
answer the document allows (status, content type, body schema) and never a
5xx. The number of requests sent is printed (run pytest with -s to see it).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from tests.support.processes import ROOT, Processes, eventually, group_is_stable, http
from tests.support.read_side import OPERATOR, TOKENS, fresh_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.integration
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)
EXAMPLES = "100"
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


@pytest.mark.timeout(1200)
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    running: str, tmp_path: Path
) -> None:
    report = tmp_path / "run.ndjson"
    output = ARTIFACTS / "schemathesis.txt"
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w") as out:
        done = subprocess.run(
            [
                str(ROOT / ".local/venv/bin/st"),
                "run",
                f"{running}/api/v1/openapi.json",
                "--checks",
                CHECKS,
                "--header",
                f"Authorization: Bearer {OPERATOR}",
                "--max-examples",
                EXAMPLES,
                # The coverage phase trips CPython 3.11.7's "AST constructor recursion
                # depth mismatch" inside hypothesis (not in our server): left out.
                "--phases",
                "examples,fuzzing,stateful",
                "--seed",
                "5",
                "--workers",
                "2",
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
            timeout=1100,
            check=False,
        )

    text = output.read_text()
    counted = re.search(r"(\d+) generated, (\d+) passed", text)
    print(f"schemathesis: {counted.group(0) if counted else 'no count'} (output: {output})")
    assert done.returncode == 0, text[-6000:]
    assert counted is not None and counted.group(1) == counted.group(2)

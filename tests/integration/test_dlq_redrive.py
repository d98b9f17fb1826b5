"""Redrive is exactly once when killed and run again, and a record that keeps
failing comes back with its attempts counted until redrive refuses it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from config import KafkaNames, Settings
from ops.dead_letters.ledger import ledger_topic
from tests.support.dead_letters import json_lines, migrator, records, write_dead_letters
from tests.support.processes import ROOT, Processes, eventually, group_is_stable, process_env
from tests.support.stack import Stack
from tests.support.system import console_produce

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("point", ["produced", "committed"])
def test_a_redrive_killed_mid_run_and_run_again_sends_each_record_once(
    settings: Settings, topics: KafkaNames, point: str
) -> None:
    dlq = topics.dlq(topics.commands)
    values = [f"value-{i}".encode() for i in range(10)]
    write_dead_letters(settings, dlq, topics.commands, values)

    killed = subprocess.run(
        [sys.executable, "-m", "tests.support.redrive_killed", dlq, point, "2"],
        cwd=ROOT, env=process_env(settings), capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    code, out, err = migrator(settings, "dlq", "redrive", dlq, "--all")

    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    committed_before_kill = 4 if point == "committed" else 2
    assert code == 0, err
    assert json.loads(out)["redriven"] == 10 - committed_before_kill
    assert Counter(r.value for r in records(settings, topics.commands)) == Counter(values)
    assert len(records(settings, ledger_topic(settings))) == 10


def test_a_record_failing_again_returns_with_one_more_attempt_until_refused(
    settings: Settings, topics: KafkaNames, stack: Stack, tmp_path: Path
) -> None:
    procs = Processes(settings, tmp_path)
    procs.start("worker")
    try:
        eventually(lambda: group_is_stable(settings.kafka.bootstrap_servers, settings.kafka.app_id))
        console_produce(stack, topics.commands, ["m-bad|not json"], keyed=True)
        for attempts in (1, 2):
            eventually(lambda n=attempts: len(_letters(settings, topics)) == n)
            redriven = migrator(settings, "dlq", "redrive", topics.commands, "--all",
                                "--max-attempts", "3")  # fmt: skip
            assert json.loads(redriven[1])["redriven"] == 1, redriven[2]
        eventually(lambda: len(_letters(settings, topics)) == 3)
        refused = migrator(settings, "dlq", "redrive", topics.commands, "--all",
                           "--max-attempts", "3")  # fmt: skip
    finally:
        assert procs.stop_all() == {"worker": 0}

    assert [row["attempts"] for row in _letters(settings, topics)] == [1, 2, 3]
    assert {row["key"] for row in _letters(settings, topics)} == {"m-bad"}
    assert refused[0] == 0 and json.loads(refused[1])["redriven"] == 0
    assert "has failed 3 times (max attempts 3)" in refused[2]


def _letters(settings: Settings, topics: KafkaNames) -> list[dict[str, object]]:
    code, out, err = migrator(settings, "dlq", "list", topics.commands, "--json")
    assert code == 0, err
    return sorted(json_lines(out), key=lambda r: (int(str(r["attempts"])), int(str(r["offset"]))))

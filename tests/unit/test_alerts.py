"""The alert rules in compose/prometheus: valid for promtool, every alert of
DESIGN.md section 7 present, and each one unit-tested firing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.support.prometheus import COMPOSE, prometheus_bin

RULES = COMPOSE / "prometheus" / "alerts.yml"
TESTS = COMPOSE / "prometheus" / "alerts.test.yml"
DASHBOARD = COMPOSE / "grafana" / "dashboards" / "migrator.json"
REQUIRED = {
    "MigrationFailureSpike",  # failure spike
    "CircuitBreakerOpenTooLong",  # breaker open too long
    "PhaseWorkersSaturated",  # saturation
    "DatabasePoolExhausted",  # pool exhaustion
    "SlowMigrations",  # slow migrations
    "DeadLetterBacklog",  # DLQ backlog
    "MigrationQuarantined",  # a gap, a fork or an unstorable event parks a migration (section 5)
    "ReplicationSlotRetainingWal",  # a slot left behind is impossible to miss (section 12)
    "LiveMigrationLagging",  # a live migration does not keep up with its source (section 12)
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = prometheus_bin() / "promtool"
    return subprocess.run(
        [str(tool), *args], cwd=RULES.parent, capture_output=True, text=True, timeout=120
    )


def alerts() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", RULES.name)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", TESTS.name)

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_the_design_asks_for_exists_and_is_tested_firing() -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }

    assert REQUIRED.issubset(alerts())
    assert fired == alerts()


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    rules = [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)]
    as_rules = tmp_path / "panels.yml"
    as_rules.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))

    checked = promtool("check", "rules", str(as_rules))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout


def test_the_dashboard_has_a_panel_for_each_thing_the_design_names() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])

    for topic in (
        "throughput",
        "active migrations",
        "failure rate",
        "duration percentiles",
        "breaker",
        "concurrency",
        "pool",
        "dlq depth",
        "consumer lag",
        "projection lag",
    ):
        assert topic in titles, topic

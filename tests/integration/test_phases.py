"""The phases against real PostgreSQL databases, run directly (no Kafka):
validation scores of a crafted table, failures that say why, cancel's
cleanup, and a repeated task that answers from its checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from domain import CancelPhase, MigrationSpec
from domain.state import PHASES
from streams.dataplane import runner
from streams.dataplane.context import Finished
from streams.dataplane.database import Databases
from streams.dataplane.errors import SpecError, ValidationFailed
from tests.support.phases import run_phase
from tests.support.stack import Stack
from tests.support.tables import fresh_database

pytestmark = pytest.mark.integration

CRAFTED = """
CREATE TABLE people (id int PRIMARY KEY, email text, age int, country text, code text, ref int);
INSERT INTO people VALUES
  (1, 'a@x.org', 30, 'de', 'A', 1),  (2, 'b@x.org', 31, 'de', 'A', 2),
  (3, NULL, 32, 'fr', 'C', 3),       (4, 'd@x.org', -1, 'fr', 'D', 4),
  (5, 'e@x.org', 130, 'de', 'E', 5), (6, 'f@x.org', NULL, 'de', 'F', NULL),
  (7, NULL, 33, 'fr', 'G', 1),       (8, 'bad', 34, 'xx', 'H', 2),
  (9, 'i@x.org', 35, 'yy', 'I', 3),  (10, 'j@x.org', 36, 'de', 'J', 99);
INSERT INTO people SELECT g, 'p' || g || '@x.org', 40, 'fr', 'K' || g, 1
  FROM generate_series(11, 20) AS g;
"""
RULES = [
    {"rule": "not_null", "column": "email"},  # fails 3, 7
    {"rule": "unique", "column": "code"},  # fails 1, 2
    {"rule": "range", "column": "age", "min": 0, "max": 120},  # fails 4, 5 (NULL passes)
    {"rule": "pattern", "column": "email", "pattern": "^[^@]+@[^@]+$"},  # fails 8
    {"rule": "allowed", "column": "country", "values": ["de", "fr"]},  # fails 8, 9
    {"rule": "foreign_key", "column": "ref", "table": "refs", "references": "id"},  # fails 10
]
# By hand: rows 1, 2, 3, 4, 5, 7, 8, 9 and 10 break at least one rule: 9 of 20.
SCORE = 1 - 9 / 20
RULE_SCORES = {
    "not_null(email)": 0.9,
    "unique(code)": 0.9,
    "range(age)": 0.9,
    "pattern(email)": 0.95,
    "allowed(country)": 0.9,
    "foreign_key(ref)": 0.95,
}


@pytest.fixture
def source_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"src_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(CRAFTED)
        yield url


@pytest.fixture
def target_url(stack: Stack, unique: str) -> Iterator[str]:
    with fresh_database(stack.database_url, f"tgt_{unique}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE refs (id int PRIMARY KEY)")
            conn.execute("INSERT INTO refs SELECT generate_series(1, 5)")
        yield url


def people(**fields: Any) -> MigrationSpec:
    base: dict[str, Any] = {
        "source_connection": "legacy",
        "source_table": "people",
        "source_key": "id",
        "target_connection": "warehouse",
        "target_table": "people",
        "rules": tuple(RULES),
        "min_score": 0.5,
        "batch_size": 3,
        "parallelism": 2,
    }
    return MigrationSpec(**{**base, **fields})


def fetch(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


async def test_the_validation_score_matches_the_hand_computed_one(
    databases: Databases, source_url: str, target_url: str
) -> None:
    spec = people()
    outcomes = [await run_phase(databases, spec, phase) for phase in PHASES]

    assert outcomes[2] == Finished(20, SCORE)
    assert all(isinstance(o, Finished) for o in outcomes)
    (result,) = fetch(
        target_url, "SELECT result FROM migrator_state.checkpoints WHERE phase = 'validate'"
    )[0]
    assert {name: r["score"] for name, r in result["rules"].items()} == RULE_SCORES
    assert result["rules"]["allowed(country)"]["samples"] == ["8", "9"]
    assert fetch(target_url, "SELECT count(*) FROM people") == [(20,)]


async def test_a_score_below_the_minimum_fails_with_a_report_and_loads_nothing(
    databases: Databases, target_url: str
) -> None:
    spec = people(min_score=0.6)
    for phase in ("extract", "transform"):
        await run_phase(databases, spec, phase)

    with pytest.raises(ValidationFailed) as failed:
        await run_phase(databases, spec, "validate")

    text = str(failed.value)
    assert text.startswith("validation score 0.5500 is below the minimum 0.6")
    assert "not_null(email): 2 of 20 rows fail (score 0.9000; e.g. keys 3, 7)" in text
    assert "foreign_key(ref): 1 of 20 rows fail" in text
    assert fetch(target_url, "SELECT to_regclass('people') IS NULL") == [(True,)]


async def test_a_repeated_task_answers_from_its_checkpoint(databases: Databases) -> None:
    spec = people()
    first = [await run_phase(databases, spec, phase) for phase in PHASES]
    again = [await run_phase(databases, spec, phase, run=9) for phase in PHASES]

    assert again == first  # staging is gone, yet every phase answers the same


async def test_bad_specs_fail_the_phase_with_the_reason(databases: Databases) -> None:
    with pytest.raises(SpecError, match="table nowhere does not exist"):
        await run_phase(databases, people(source_table="nowhere"), "extract")
    with pytest.raises(SpecError, match="no connection named 'elsewhere'"):
        await databases.get("elsewhere")
    # the mapping runs inside extract's copy: it is checked before any row moves
    with pytest.raises(SpecError, match="the mapping drops the source key id"):
        await run_phase(databases, people(mapping={"id": None}), "extract")


async def test_cancel_drops_staging_and_a_late_task_does_nothing(
    databases: Databases, target_url: str
) -> None:
    spec = people()
    await run_phase(databases, spec, "extract")
    staged = "SELECT count(*) FROM pg_tables WHERE schemaname = 'migrator_staging'"
    assert fetch(target_url, staged) == [(1,)]

    await runner.cancel(
        CancelPhase(task_id="c", migration_id="m-1", run=1, spec=spec),
        await databases.get("warehouse"),
    )
    late = await run_phase(databases, spec, "transform")

    assert fetch(target_url, staged) == [(0,)]
    assert not isinstance(late, Finished)

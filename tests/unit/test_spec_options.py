"""A spec's options (`on_existing`, `mode`): their defaults, the values they
take, and the specs refused before anything runs, each with its reason."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from domain import MigrationSpec
from domain.errors import SpecError
from domain.options import Mode, OnExisting, parse_options
from domain.spec import ParsedSpec, parse_spec

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="customers",
    source_key="id",
    target_connection="warehouse",
    target_table="customers",
)
RULE = {"rule": "not_null", "column": "email"}


def test_a_spec_without_options_upserts_the_full_pipeline() -> None:
    parsed = parse_spec(SPEC)

    assert (SPEC.on_existing, SPEC.mode) == ("upsert", "full")
    assert (parsed.on_existing, parsed.mode) == (OnExisting.UPSERT, Mode.FULL)
    assert not parsed.copy_only


@pytest.mark.parametrize("on_existing", ["replace", "append", "upsert"])
@pytest.mark.parametrize("mode", ["full", "copy-only"])
def test_every_value_of_each_option_is_taken_and_typed(on_existing: str, mode: str) -> None:
    parsed = parse_spec(replace(SPEC, on_existing=on_existing, mode=mode))

    assert parsed.on_existing is OnExisting(on_existing)
    assert parsed.mode is Mode(mode)
    assert parsed.copy_only is (mode == "copy-only")


def test_a_full_spec_keeps_its_mapping_and_rules_parsed() -> None:
    parsed = parse_spec(replace(SPEC, mapping={"full_name": "name"}, rules=(RULE,)))

    assert isinstance(parsed, ParsedSpec)
    assert [c.target for c in parsed.mapping.plan(["id", "name"])] == ["id", "full_name"]
    assert [r.name for r in parsed.rules] == ["not_null(email)"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"on_existing": "merge"},
            "on_existing must be one of ['replace', 'append', 'upsert'], not 'merge'",
        ),
        ({"on_existing": "UPSERT"}, "on_existing must be one of"),
        ({"on_existing": ""}, "on_existing must be one of"),
        (
            {"on_existing": None},
            "on_existing must be one of ['replace', 'append', 'upsert'], not None",
        ),
        ({"mode": "fast"}, "mode must be one of ['full', 'copy-only'], not 'fast'"),
        ({"mode": "copy_only"}, "mode must be one of ['full', 'copy-only'], not 'copy_only'"),
        ({"mode": 1}, "mode must be one of ['full', 'copy-only'], not 1"),
        (
            {"mode": "copy-only", "mapping": {"full_name": "name"}},
            "mapping must be empty when mode is 'copy-only'",
        ),
        ({"mode": "copy-only", "mapping": {"tags": None}}, "mapping must be empty"),
        ({"mode": "copy-only", "rules": (RULE,)}, "rules must be empty when mode is 'copy-only'"),
    ],
)
def test_a_spec_with_a_wrong_option_is_refused_saying_which(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(replace(SPEC, **change))

    assert message in str(refused.value)


def test_a_copy_only_spec_may_have_an_empty_mapping_and_no_rules() -> None:
    parsed = parse_spec(replace(SPEC, mode="copy-only", mapping={}, rules=()))

    assert parsed.copy_only and parsed.rules == ()


def test_the_options_are_checked_before_the_mapping_they_forbid() -> None:
    broken = {"c": {"case": "title"}}  # a mapping the parser refuses on its own

    with pytest.raises(SpecError, match="mapping must be empty when mode is 'copy-only'"):
        parse_spec(replace(SPEC, mode="copy-only", mapping=broken))
    with pytest.raises(SpecError, match="case must be 'upper' or 'lower'"):
        parse_spec(replace(SPEC, mapping=broken))


def test_a_long_refused_value_is_quoted_short() -> None:
    with pytest.raises(SpecError) as refused:
        parse_options("x" * 10_000, "full", {}, ())

    assert len(str(refused.value)) < 120

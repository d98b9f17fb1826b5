"""The OpenAPI document and the spec parser agree on a spec's source key,
mapping and rules: what the document calls valid the API accepts, what it
calls invalid the API refuses (the body model, which runs the domain's
parser). One exception: a composite key that names a column twice matches
the key's pattern and is refused (its description says each column once)."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis.generation import GenerationMode

from api.models import CreateMigrationIn
from api.openapi import DOCUMENT
from api.spec_schema import LINEAR_REGEX
from domain.spec import _slow_construct
from tests.support.system import SPEC

BODY = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/CreateMigrationIn", "components": DOCUMENT["components"]},
    validate_formats=True,
)
CREATE = schemathesis.openapi.from_dict(DOCUMENT)["/api/v1/migrations"]["POST"]
GENERATED = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def accepted(body: object) -> bool:
    try:
        CreateMigrationIn.model_validate(body)
    except (ValidationError, ValueError):
        return False
    return True


def with_spec(**change: Any) -> dict[str, Any]:
    return {"spec": {**SPEC, **change}}


@pytest.mark.parametrize(
    ("mapping", "valid"),
    [
        ({"full_name": "name", "avatar": None, "email": {"drop": True}}, True),
        ({"label": {"concat": ["a", "b"], "separator": " ", "trim": True, "case": "upper"}}, True),
        (
            {"c": {"from": "x", "map": {"a": 1, "b": None}, "map_else": "?", "cast": "INTEGER"}},
            True,
        ),
        ({"c": {"cast": "numeric(10, 2)[]", "default": 0}}, True),
        ({"c": {}}, True),
        ({"c": {"drop": False}}, False),
        ({"c": {"drop": True, "trim": True}}, False),
        ({"c": {"from": "a", "concat": ["b"]}}, False),
        ({"c": {"separator": "-"}}, False),
        ({"c": {"map_else": "y"}}, False),
        ({"c": {"map": {}}}, False),
        ({"c": {"concat": []}}, False),
        ({"c": {"case": "title"}}, False),
        ({"c": {"cast": " integer"}}, False),
        ({"c": {"cast": "numeric(\u0663)"}}, False),
        ({"c": {"cast": "int; DROP TABLE t"}}, False),
        ({"c": {"default": [1]}}, False),
        ({"c": {"trim": "yes"}}, False),
        ({"c": 5}, False),
        ({"": "a"}, False),
        ({"c" * 64: "a"}, False),
        ({"c": "a" * 64}, False),
    ],
)
def test_the_document_and_the_parser_agree_on_a_mapping(
    mapping: dict[str, object], valid: bool
) -> None:
    body = with_spec(mapping=mapping)
    assert (BODY.is_valid(body), accepted(body)) == (valid, valid)


@pytest.mark.parametrize(
    ("rule", "valid"),
    [
        ({"rule": "not_null", "column": "a", "name": None}, True),
        ({"rule": "unique", "column": "a", "name": "one per key"}, True),
        ({"rule": "range", "column": "a", "min": 0}, True),
        ({"rule": "range", "column": "a", "min": None, "max": "z"}, True),
        ({"rule": "pattern", "column": "a", "pattern": "^[a-z]+$"}, True),
        ({"rule": "allowed", "column": "a", "values": ["x", 1, True]}, True),
        ({"rule": "foreign_key", "column": "a", "table": "s.t.u", "references": "id"}, True),
        ({"rule": "sometimes", "column": "a"}, False),
        ({"rule": "not_null"}, False),
        ({"rule": "not_null", "column": "a", "name": 0}, False),
        ({"rule": "not_null", "column": "a", "min": 1}, False),
        ({"rule": "range", "column": "a"}, False),
        ({"rule": "range", "column": "a", "min": None, "max": None}, False),
        ({"rule": "pattern", "column": "a", "pattern": "("}, False),
        ({"rule": "pattern", "column": "a", "pattern": r"(a)\1"}, False),
        ({"rule": "pattern", "column": "a", "pattern": r"\\1"}, True),
        ({"rule": "pattern", "column": "a", "pattern": "a(?=b)"}, False),
        ({"rule": "pattern", "column": "a", "pattern": "[(?<!x]"}, False),
        ({"rule": "pattern", "column": "a", "pattern": r"\(?=x"}, True),
        ({"rule": "pattern", "column": "a", "pattern": r"\\(?=x)"}, False),
        ({"rule": "pattern", "column": "a", "pattern": "a" * 257}, False),
        ({"rule": "pattern", "column": "a", "pattern": "a" * 256}, True),
        ({"rule": "pattern", "column": "a", "pattern": "S]"}, False),
        ({"rule": "pattern", "column": "a"}, False),
        ({"rule": "allowed", "column": "a", "values": []}, False),
        ({"rule": "allowed", "column": "a", "values": [[1]]}, False),
        ({"rule": "foreign_key", "column": "a", "table": "t"}, False),
        ({"rule": "foreign_key", "column": "a", "table": ".t", "references": "id"}, False),
        ({"rule": "foreign_key", "column": "a", "table": "s.", "references": "id"}, False),
    ],
)
def test_the_document_and_the_parser_agree_on_a_rule(rule: dict[str, object], valid: bool) -> None:
    body = with_spec(rules=[rule])
    assert (BODY.is_valid(body), accepted(body)) == (valid, valid)


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({"on_existing": "replace", "mode": "full"}, True),
        ({"on_existing": "append"}, True),
        ({"mode": "copy-only"}, True),
        ({"mode": "copy-only", "mapping": {}, "rules": []}, True),
        (
            {"mode": "full", "mapping": {"a": "b"}, "rules": [{"rule": "unique", "column": "a"}]},
            True,
        ),
        ({"on_existing": "merge"}, False),
        ({"on_existing": None}, False),
        ({"mode": "Copy-Only"}, False),
        ({"mode": 0}, False),
        ({"mode": "copy-only", "mapping": {"a": "b"}}, False),
        ({"mode": "copy-only", "mapping": {"a": None}}, False),
        ({"mode": "copy-only", "rules": [{"rule": "unique", "column": "a"}]}, False),
    ],
)
def test_the_document_and_the_parser_agree_on_the_options(
    options: dict[str, object], valid: bool
) -> None:
    body = with_spec(**options)
    assert (BODY.is_valid(body), accepted(body)) == (valid, valid)


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("id", True),
        ("tenant_id, id", True),
        ("tenant_id,id", True),
        ("a , b ,c", True),
        ("schema.col", True),
        (", ".join(f"c{i}" for i in range(32)), True),
        (", ".join(f"c{i}" for i in range(33)), False),
        ("", False),
        ("id,", False),
        (" id", False),
        ("a,,b", False),
        ("a b", False),
        ("1id", False),
        ("id; DROP TABLE t", False),
        ("c" * 129, False),
        (["tenant_id", "id"], False),
    ],
)
def test_the_document_and_the_parser_agree_on_a_source_key(key: object, valid: bool) -> None:
    body = with_spec(source_key=key)
    assert (BODY.is_valid(body), accepted(body)) == (valid, valid)


def test_a_key_naming_a_column_twice_is_refused_though_the_pattern_lets_it_by() -> None:
    body = with_spec(source_key="tenant_id, id, tenant_id")

    assert BODY.is_valid(body)  # a pattern cannot say "each name once"; the description does
    with pytest.raises(ValidationError, match="source_key names tenant_id more than once"):
        CreateMigrationIn.model_validate(body)


def repeats_a_key_column(body: object) -> bool:
    """A body the document calls valid whose source key names a column twice."""
    key = body.get("spec", {}).get("source_key") if isinstance(body, dict) else None
    if not isinstance(key, str):
        return False
    names = [part.strip() for part in key.split(",")]
    return len(set(names)) < len(names)


@GENERATED
@given(CREATE.as_strategy(generation_mode=GenerationMode.POSITIVE))
def test_every_body_the_document_calls_valid_is_accepted(case: Any) -> None:
    if repeats_a_key_column(case.body):  # the one rule the document states only in words
        assert not accepted(case.body), case.body
        return
    assert accepted(case.body), case.body


@GENERATED
@given(CREATE.as_strategy(generation_mode=GenerationMode.NEGATIVE))
def test_every_body_the_document_calls_invalid_is_refused(case: Any) -> None:
    if isinstance(case.body, bytes) or BODY.is_valid(case.body):
        return  # not JSON (refused unread), or the request is invalid elsewhere
    assert not accepted(case.body), case.body


@given(st.text(alphabet=["\\", "(", "?", "=", "!", "<", "1", "k", "a", ")", "\x00", "\n"]))
def test_the_documents_pattern_rule_reads_a_pattern_as_the_parser_does(pattern: str) -> None:
    parser_takes = _slow_construct(pattern) is None and "\x00" not in pattern

    assert (re.search(LINEAR_REGEX, pattern) is not None) == parser_takes

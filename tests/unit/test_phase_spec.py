"""The declarative mapping and rules: parsed strictly, planned against the
source's columns, and turned into SQL that quotes every name."""

from __future__ import annotations

import pytest
from psycopg import sql

from domain.errors import SpecError
from domain.spec import MAX_PATTERN, Column, parse_mapping, parse_rule, parse_spec_parts
from streams.dataplane.sql import expression, failing, staging_name

SOURCE = ["id", "name", "email", "country", "avatar"]


def targets(mapping: dict[str, object]) -> list[str]:
    return [c.target for c in parse_mapping(mapping).plan(SOURCE)]


def render(composable: sql.Composable) -> str:
    return composable.as_string(None)


def test_an_empty_mapping_copies_every_column() -> None:
    assert targets({}) == SOURCE


def test_a_rename_moves_the_column_and_drop_removes_it() -> None:
    assert targets({"full_name": "name", "avatar": None}) == [
        "id",
        "email",
        "country",
        "full_name",
    ]
    assert targets({"avatar": {"drop": True}}) == ["id", "name", "email", "country"]


def test_a_computed_column_named_like_its_source_stays_in_place() -> None:
    assert targets({"email": {"case": "lower"}}) == SOURCE


def test_from_moves_and_concat_keeps_its_parts() -> None:
    assert targets({"who": {"from": "name", "trim": True}}) == [
        "id",
        "email",
        "country",
        "avatar",
        "who",
    ]
    assert targets({"label": {"concat": ["name", "country"]}}) == [*SOURCE, "label"]


def test_a_renamed_column_kept_under_its_own_name_too() -> None:
    assert targets({"copy": "name", "name": "name"}) == [*SOURCE, "copy"]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"x": 5}, "must be a column name, null or an object"),
        ({"x": {"frm": "a"}}, "unknown keys ['frm']"),
        ({"x": {"from": "a", "concat": ["b"]}}, "either from or concat"),
        ({"x": {"concat": []}}, "non-empty list"),
        ({"x": {"cast": "int; DROP TABLE t"}}, "is not a type name"),
        ({"x": {"case": "title"}}, "'upper' or 'lower'"),
        ({"x": {"map": {}}}, "non-empty object"),
        ({"x": {"map_else": "y"}}, "map_else goes with map"),
        ({"x": {"default": [1]}}, "string, number, boolean or null"),
        ({"": "a"}, "must be a name"),
    ],
)
def test_a_bad_mapping_says_what_is_wrong(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match="mapping") as caught:
        parse_mapping(mapping)
    assert message in str(caught.value)


def test_a_mapping_naming_a_missing_column_fails_when_planned() -> None:
    with pytest.raises(SpecError, match=r"does not have: \['nope'\]"):
        parse_mapping({"x": "nope"}).plan(SOURCE)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"rule": "sometimes", "column": "a"}, "rules[0].rule must be one of"),
        ({"rule": ["not_null"], "column": "a"}, "rules[0].rule must be one of"),
        ({"rule": "range", "column": "a"}, "range needs min or max"),
        ({"rule": "pattern", "column": "a", "pattern": "("}, "not a regular expression"),
        ({"rule": "allowed", "column": "a", "values": []}, "non-empty list"),
        ({"rule": "not_null", "column": "a", "extra": 1}, "unknown keys ['extra']"),
        ({"rule": "foreign_key", "column": "a", "table": "t"}, "references must be a name"),
    ],
)
def test_a_bad_rule_says_what_is_wrong(rule: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec_parts({}, [rule])
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"^(a+)\1$", "back references ('\\\\1') are not allowed"),
        (r"(x)(y)\2", "back references ('\\\\2') are not allowed"),
        (r"(a)\12", "back references ('\\\\1') are not allowed"),
        (r"(?<n>a)\k<n>", "back references ('\\\\k') are not allowed"),
        (r"\\\1", "back references ('\\\\1') are not allowed"),
        (r"^(?=.*\d)", "lookaround constraints ('(?=') are not allowed"),
        (r"^(?!admin)", "lookaround constraints ('(?!') are not allowed"),
        (r"(?<=@)x", "lookaround constraints ('(?<=') are not allowed"),
        (r"(?<!@)x", "lookaround constraints ('(?<!') are not allowed"),
        ("a" * (MAX_PATTERN + 1), f"is {MAX_PATTERN + 1} characters long; at most {MAX_PATTERN}"),
    ],
)
def test_a_pattern_postgresql_may_not_run_in_linear_time_is_refused_naming_the_rule(
    pattern: str, message: str
) -> None:
    rule = {"rule": "pattern", "column": "email", "pattern": pattern}

    with pytest.raises(SpecError) as caught:
        parse_spec_parts({}, [{"rule": "not_null", "column": "id"}, rule])

    assert str(caught.value).startswith("rules[1].pattern")
    assert str(caught.value).endswith("(rule 'pattern(email)')")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "pattern",
    [r"^[^@]+@[^@]+$", r"\\1", r"^\d{3}-\d{4}$", r"(a|b)*c", r"^(?:ab)+$", "a" * MAX_PATTERN],
)
def test_a_linear_pattern_passes(pattern: str) -> None:
    (rule,) = parse_spec_parts({}, [{"rule": "pattern", "column": "c", "pattern": pattern}])[1]

    assert rule.param("pattern") == pattern


def test_a_column_expression_applies_its_steps_in_order() -> None:
    column = Column(
        "c",
        ("a", "b"),
        separator=" ",
        trim=True,
        case="upper",
        value_map=(("X", "y"),),
        cast="text",
        default="none",
    )
    assert render(expression(column)) == (
        'coalesce((CASE (upper((btrim((concat_ws(\' \', "a"::text, "b"::text))::text))::text))'
        "::text WHEN 'X' THEN 'y' ELSE (upper((btrim((concat_ws(' ', \"a\"::text, \"b\"::text))"
        "::text))::text))::text END)::text, 'none')"
    )


def test_names_are_quoted_and_values_are_literals() -> None:
    rule = parse_rule(0, {"rule": "allowed", "column": 'we"ird', "values": ["a'b", 1]})
    rendered = render(failing(rule, sql.Identifier("rows")))
    assert '"we""ird"' in rendered and "'a''b'" in rendered and "'1'" in rendered


def test_staging_names_are_safe_and_stable() -> None:
    name = staging_name("m-1; DROP TABLE x", "raw")
    assert name == staging_name("m-1; DROP TABLE x", "raw")
    assert (
        name.startswith("migrator_staging.raw_")
        and name.replace("_", "").replace(".", "").isalnum()
    )

"""A spec's source key: one column, or several separated by commas (a
composite key), parsed strictly, recorded as it was read, and turned into SQL
that names every column of it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from psycopg import sql

from domain import MigrationSpec
from domain.errors import SpecError
from domain.spec import (
    MAX_KEY_COLUMNS,
    key_text,
    parse_mapping,
    parse_rule,
    parse_source_key,
    parse_spec,
)
from streams.dataplane import staged
from streams.dataplane.fit import key_missing, null_keys
from streams.dataplane.sql import key_match, merge, rules_scan
from streams.dataplane.sql import key_text as key_sql

SPEC = MigrationSpec(
    source_connection="legacy",
    source_table="lines",
    source_key="tenant_id, id",
    target_connection="warehouse",
    target_table="lines",
)


def render(composable: sql.Composable) -> str:
    return composable.as_string(None)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("id", ("id",)),
        ("tenant_id, id", ("tenant_id", "id")),
        ("tenant_id,id", ("tenant_id", "id")),
        ("  id ,tenant_id ", ("id", "tenant_id")),  # in the order given: chunks go by the first
        ("a.b, c", ("a.b", "c")),
    ],
)
def test_a_key_names_one_column_or_several_in_order(text: str, key: tuple[str, ...]) -> None:
    assert parse_source_key(text) == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "source_key must name a column, or several separated by commas, not ''"),
        ("a,", "source_key must name a column, or several separated by commas, not 'a,'"),
        ("a, , b", "not 'a, , b'"),
        (["a", "b"], "not ['a', 'b']"),
        ("id, tenant_id, id", "source_key names id more than once"),
        ("b, a, b, a", "source_key names a, b more than once"),
        (
            ", ".join(f"c{i}" for i in range(MAX_KEY_COLUMNS + 1)),
            f"source_key has 33 columns; a key has at most {MAX_KEY_COLUMNS}",
        ),
        ("a,\x00", "source_key"),
    ],
)
def test_a_bad_key_is_refused_saying_why(text: object, message: str) -> None:
    with pytest.raises(SpecError, match=r"^source_key") as refused:
        parse_source_key(text)

    assert message in str(refused.value)


def test_the_parsed_spec_holds_the_key_and_the_record_its_text() -> None:
    assert parse_spec(SPEC).key == ("tenant_id", "id")
    assert parse_spec(replace(SPEC, source_key="id")).key == ("id",)
    assert SPEC.source_key == "tenant_id, id"
    with pytest.raises(SpecError, match="names id more than once"):
        parse_spec(replace(SPEC, source_key="id,id"))


def test_messages_name_a_key_as_one_column_or_a_tuple() -> None:
    assert key_text(("id",)) == "id"
    assert key_text(("tenant_id", "id")) == "(tenant_id, id)"


def test_a_key_with_nulls_says_in_which_columns() -> None:
    assert null_keys("t", ("k",), 4, 2, [2]) == (
        "source key k of t is NULL in 2 of 4 rows; the key must identify every row"
    )
    assert null_keys("t", ("tenant_id", "id"), 600, 3, [0, 3]) == (
        "source key (tenant_id, id) of t has a NULL column in 3 of 600 rows (NULL: id in 3);"
        " the key must identify every row"
    )


def test_a_key_that_is_not_there_points_at_the_primary_key() -> None:
    columns = ["order_id", "line", "item"]

    assert key_missing(("line_no",), "lines", columns, ["order_id", "line"]) == (
        "source key line_no is not a column of lines; its primary key is (order_id, line):"
        ' source_key "order_id, line"'
    )
    assert key_missing(("order_id", "nr"), "lines", columns, []) == (
        "source key (order_id, nr) names nr: not a column of lines"
    )


def test_the_staged_key_is_every_key_column_as_mapped() -> None:
    plan = parse_mapping({"tenant": "tenant_id", "note": None}).plan(["tenant_id", "id", "note"])

    assert staged.key_columns(plan, ("tenant_id", "id")) == ("tenant", "id")
    assert staged.key_columns(plan, ("id",)) == ("id",)
    dropped = parse_mapping({"id": None}).plan(["tenant_id", "id"])
    with pytest.raises(SpecError, match=r"drops id, a column of the source key \(tenant_id, id\)"):
        staged.key_columns(dropped, ("tenant_id", "id"))
    with pytest.raises(SpecError, match="the mapping drops the source key id; keep or rename it"):
        staged.key_columns(dropped, ("id",))


@pytest.mark.parametrize(
    ("key", "recorded"), [(("id",), "id"), (("tenant_id", "id"), ["tenant_id", "id"])]
)
def test_the_plan_records_one_column_as_before_and_a_composite_key_as_a_list(
    key: tuple[str, ...], recorded: object
) -> None:
    position = staged.plan_position(key, ["tenant_id", "id"], [True, True], 10)

    assert position["key"] == recorded
    assert staged._key_of(position["key"]) == key


def test_the_sql_names_every_key_column() -> None:
    key = ("tenant_id", "id")
    rows, target = sql.Identifier("rows"), sql.Identifier("t")

    assert render(key_sql(("id",), "s")) == '"s"."id"::text'
    assert render(key_sql(key, "s")) == 'ROW("s"."tenant_id", "s"."id")::text'
    assert render(key_match(key, "w", "s")) == (
        '"w"."tenant_id" = "s"."tenant_id" AND "w"."id" = "s"."id"'
    )
    upsert = render(merge(target, rows, ["tenant_id", "id", "v"], key, "upsert"))
    assert upsert.endswith('ON CONFLICT ("tenant_id", "id") DO UPDATE SET "v" = EXCLUDED."v"')
    scan = render(rules_scan([parse_rule(0, {"rule": "not_null", "column": "v"})], rows, key))
    assert 'array_agg(ROW("s"."tenant_id", "s"."id")::text' in scan
    assert 'ORDER BY "s"."tenant_id", "s"."id"' in scan

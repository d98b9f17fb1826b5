"""wal2json's rows as transactions, and the schema-drift guard over them:
pure, no database."""

from __future__ import annotations

import json

import pytest

from streams.dataplane.cdc.changes import UPDATE, Change, Column, transactions
from streams.dataplane.cdc.drift import Shape, check_catalog, check_change
from streams.dataplane.cdc.slots import Peeked, lsn_number, options, slot_name
from streams.dataplane.errors import SchemaDrifted

SHAPE = Shape(
    "public.items",
    (("id", "bigint"), ("name", "text"), ("n", "integer"), ("big", "text")),
    frozenset({"name", "big"}),
)


def row(lsn: str, action: str, **fields: object) -> tuple[str, str, str]:
    return (lsn, "731", json.dumps({"action": action, **fields}))


def column(name: str, type_: str, value: object) -> dict[str, object]:
    return {"name": name, "type": type_, "value": value}


def test_rows_become_whole_transactions_with_values_as_text() -> None:
    found = transactions(
        [
            row("0/10", "B", timestamp="2026-12-06 21:53:31.5+00"),
            row(
                "0/11",
                "I",
                schema="public",
                table="items",
                columns=[
                    column("id", "bigint", 12345678901234567890),
                    column("ok", "boolean", True),
                ],
            ),
            row("0/12", "D", schema="public", table="items", identity=[column("id", "bigint", 3)]),
            row("0/20", "C", timestamp="2026-12-06 21:53:31.5+00"),
            row("0/21", "B"),  # unfinished: left for the next look
        ]
    )
    assert len(found) == 1
    txn = found[0]
    assert (txn.end, txn.xid, txn.committed_at) == ("0/20", 731, "2026-12-06 21:53:31.5+00")
    assert txn.changes[0].values() == {"id": "12345678901234567890", "ok": "true"}
    assert txn.changes[1].old() == {"id": "3"}


def test_numbers_keep_their_exact_text() -> None:
    data = (
        '{"action":"I","schema":"s","table":"t",'
        '"columns":[{"name":"x","type":"numeric","value":0.10000000000000000001}]}'
    )
    found = transactions(
        [("0/1", "1", '{"action":"B"}'), ("0/2", "1", data), ("0/3", "1", '{"action":"C"}')]
    )
    assert found[0].changes[0].values() == {"x": "0.10000000000000000001"}


def update(*names: str, types: dict[str, str] | None = None) -> Change:
    kinds = {**dict(SHAPE.columns), **(types or {})}
    return Change(
        UPDATE, "public.items", tuple(Column(n, kinds.get(n, "text"), "v") for n in names)
    )


def test_an_update_may_leave_out_toasted_columns_but_not_others() -> None:
    check_change(SHAPE, update("id", "n"))  # name and big unchanged, TOASTed
    with pytest.raises(SchemaDrifted, match="column n dropped"):
        check_change(SHAPE, update("id", "name", "big"))


def test_each_kind_of_ddl_is_named() -> None:
    with pytest.raises(SchemaDrifted, match="column colour added \\(text\\)"):
        check_change(SHAPE, update("id", "name", "n", "big", "colour"))
    with pytest.raises(SchemaDrifted, match="column n retyped from integer to bigint"):
        check_change(SHAPE, update("id", "name", "n", "big", types={"n": "bigint"}))
    with pytest.raises(SchemaDrifted, match="column big dropped"):
        check_catalog(SHAPE, SHAPE.columns[:3])
    check_catalog(SHAPE, SHAPE.columns)


def test_slot_names_are_valid_and_stable() -> None:
    name = slot_name("Mig-ÄÖ/1 with spaces and a very long id that goes on and on and on")
    assert name == slot_name("Mig-ÄÖ/1 with spaces and a very long id that goes on and on and on")
    assert len(name) <= 63 and all((c.isalnum() and c.isascii()) or c == "_" for c in name)
    assert slot_name("a") != slot_name("A")


def test_lsns_compare_as_numbers_and_a_look_ends_where_it_may() -> None:
    assert lsn_number("1/0") > lsn_number("0/FFFFFFFF") > lsn_number("0/A")
    caught_up = Peeked(upto="0/30", now="", found=[], more=False)
    assert caught_up.end == "0/30"
    assert options("sales.order items")[-1] == "sales.order\\ items"


def test_a_type_printed_without_its_quotes_is_the_same_type() -> None:
    shape = Shape("public.t", (("id", "integer"), ("flag", '"char"')))
    check_change(
        shape,
        Change(UPDATE, "public.t", (Column("id", "integer", "1"), Column("flag", "char", "x"))),
    )

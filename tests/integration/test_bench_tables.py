"""The migration benchmark's widened tables: the source gets the added columns
with their values, and an empty table of the same shape takes its rows by
binary COPY (the benchmark's pipe), column for column."""

from __future__ import annotations

import psycopg
import pytest

from scripts.bench.migration_tables import SHAPES, extra_columns, widened

pytestmark = pytest.mark.integration


def columns(url: str, table: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = %s ORDER BY ordinal_position",
            [table],
        ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


@pytest.mark.parametrize("base", ["narrow", "wide"])
def test_a_widened_table_has_the_added_columns_and_copies_into_its_empty_shape(
    database_url: str, base: str
) -> None:
    shape = widened(SHAPES[base], 5)
    shape.fill(database_url, 200)
    shape.create_empty(database_url, "copy_of")

    source = columns(database_url, shape.table)
    assert len(source) == SHAPES[base].columns + 5 == shape.columns
    assert source[-5:] == [
        ("x_text_1", "text"),
        ("x_num_2", "numeric"),
        ("x_text_3", "text"),
        ("x_num_4", "numeric"),
        ("x_text_5", "text"),
    ]
    assert columns(database_url, "copy_of") == source
    with (
        psycopg.connect(database_url) as reading,
        psycopg.connect(database_url) as writing,
        reading.cursor().copy(f"COPY {shape.table} TO STDOUT (FORMAT binary)") as reader,
        writing.cursor().copy("COPY copy_of FROM STDIN (FORMAT binary)") as writer,
    ):
        for block in reader:
            writer.write(block)
    with psycopg.connect(database_url, autocommit=True) as conn:
        differing = conn.execute(  # as text: json has no equality
            f"SELECT count(*) FROM (SELECT s::text FROM {shape.table} s EXCEPT ALL"
            " SELECT c::text FROM copy_of c) d"
        ).fetchone()
        counts = conn.execute(
            f"SELECT count(*), count(x_text_1), count(x_num_4),"
            f" count(*) FILTER (WHERE x_num_2 = round(id::numeric * 2 / 7, 6))"
            f" FROM {shape.table}"
        ).fetchone()
    assert differing == (0,)
    # NULL in one row of 11 + i: 200 // 12 for x_text_1, 200 // 15 for x_num_4.
    assert counts == (200, 200 - 200 // 12, 200 - 200 // 15, 200 - 200 // 13)
    assert [name for name, _, _ in extra_columns(2)] == ["x_text_1", "x_num_2"]

"""What a cutover checks before its switch: every row whose key a change
touched since the snapshot, source against target (both printed in one
pinned text style and hashed), the tables' counts and checksums, and the
sequences the source table's columns own, set on the target's.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from psycopg import sql

from streams.dataplane.cdc.apply import Routes
from streams.dataplane.cdc.drift import Shape
from streams.dataplane.database import Conn, Database
from streams.dataplane.sql import STABLE_TEXT
from streams.dataplane.sql import table as identifier

BATCH = 1000  # keys compared per query


def _row(names: Sequence[str]) -> sql.Composed:
    """A row's hash: md5 of its columns' text, in the given order."""
    return sql.SQL("md5(ROW({})::text)").format(
        sql.SQL(", ").join(sql.Identifier("s", n) for n in names)
    )


async def hashes(
    conn: Conn,
    table: str,
    key: Sequence[str],
    columns: Sequence[str],
    types: Sequence[str],
    keys: list[list[str | None]],
) -> list[str | None]:
    """Per key of `keys` (values as text), its row's hash in `table` (None: no such row)."""
    arrays = sql.SQL(", ").join(
        sql.SQL("{}::{}[]").format(sql.Placeholder(), sql.SQL(t)) for t in types
    )
    aliases = [sql.Identifier(f"k{i}") for i in range(len(key))]
    match = sql.SQL(" AND ").join(
        sql.SQL("{} = k.{}").format(sql.Identifier("s", c), a)
        for c, a in zip(key, aliases, strict=True)
    )
    query = sql.SQL(
        "SELECT {} FROM unnest({}) WITH ORDINALITY AS k({}, i) LEFT JOIN {} AS s ON {} ORDER BY k.i"
    ).format(_row(columns), arrays, sql.SQL(", ").join(aliases), identifier(table), match)
    params = [[k[i] for k in keys] for i in range(len(key))]
    async with conn.transaction():
        await conn.execute(STABLE_TEXT)
        rows = await (await conn.execute(query, params)).fetchall()
    return [r[0] for r in rows]


async def differing(
    source: Database,
    target: Database,
    routes: Routes,
    shape: Shape,
    source_table: str,
    keys: list[list[str | None]],
) -> list[list[str | None]]:
    """The keys among `keys` whose source and target rows differ (or only one has)."""
    names = [n for n, _ in shape.columns if n in routes.columns]
    types = [shape.types[k] for k in routes.key]
    found: list[list[str | None]] = []
    mapped = [routes.columns[n] for n in names]
    for i in range(0, len(keys), BATCH):
        batch = keys[i : i + BATCH]
        theirs = await source.autocommit(
            partial(
                hashes, table=source_table, key=routes.key, columns=names, types=types, keys=batch
            )
        )
        ours = await target.autocommit(
            partial(
                hashes,
                table=routes.target,
                key=routes.target_key,
                columns=mapped,
                types=types,
                keys=batch,
            )
        )
        found += [k for k, a, b in zip(batch, theirs, ours, strict=True) if a != b]
    return found


async def all_keys(conn: Conn, table: str, key: Sequence[str]) -> list[list[str | None]]:
    """Every key of `table`, as text (after a TRUNCATE every row is checked)."""
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in key),
        identifier(table),
    )
    return [list(r) for r in await (await conn.execute(query)).fetchall()]


async def figures(conn: Conn, table: str, columns: Sequence[str]) -> tuple[int, str]:
    """Rows of `table` and the sum of their hashes (text), columns in this order."""
    query = sql.SQL(
        "SELECT count(*), coalesce(sum(hashtextextended(ROW({})::text, 0)), 0)::text FROM {} AS s"
    ).format(sql.SQL(", ").join(sql.Identifier("s", n) for n in columns), identifier(table))
    async with conn.transaction():
        await conn.execute(STABLE_TEXT)
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


OWNED = """
SELECT a.attname, pg_get_serial_sequence(%(table)s, a.attname)
FROM pg_attribute a WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0
  AND NOT a.attisdropped AND pg_get_serial_sequence(%(table)s, a.attname) IS NOT NULL
"""


async def owned_sequences(conn: Conn, table: str) -> dict[str, tuple[str, int, bool]]:
    """Per column of `table` that owns a sequence: (its name, last_value, is_called)."""
    regname = ".".join(f'"{p}"' for p in table.split(".", 1))
    found: dict[str, tuple[str, int, bool]] = {}
    for column, sequence in await (await conn.execute(OWNED, {"table": regname})).fetchall():
        state = await (
            await conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(sequence))
            )
        ).fetchone()
        assert state is not None
        found[str(column)] = (str(sequence), int(state[0]), bool(state[1]))
    return found


async def _setval(conn: Conn, sequence: str, value: int, called: bool) -> None:
    await conn.execute("SELECT setval(%s, %s, %s)", (sequence, value, called))


async def set_sequences(
    source: Database, target: Database, routes: Routes, source_table: str
) -> tuple[tuple[str, str, int], ...]:
    """Set each target sequence owned by a routed column as the source's is;
    (source sequence, target sequence, value) of those set."""
    theirs = await source.autocommit(lambda c: owned_sequences(c, source_table))
    ours = await target.autocommit(lambda c: owned_sequences(c, routes.target))
    done: list[tuple[str, str, int]] = []
    for column, (name, value, called) in sorted(theirs.items()):
        mine = ours.get(routes.columns.get(column, ""))
        if mine is None:
            continue
        await target.autocommit(partial(_setval, sequence=mine[0], value=value, called=called))
        done.append((name, mine[0], value))
    return tuple(done)

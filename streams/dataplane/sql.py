"""SQL for the phases, composed from the parsed spec with psycopg's `sql`
module: names are always quoted identifiers, values always literals.

Staging lives in the target database, schema `migrator_staging`, one pair of
tables per migration: `raw_*` (the extracted source rows) and `rows_*` (the
transformed rows). Their names derive from the migration id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from psycopg import sql

from domain.spec import Column, Rule, table_parts

STAGING_SCHEMA = "migrator_staging"
STATE_SCHEMA = "migrator_state"
SAMPLE_KEYS = 5
# How values print, pinned for a checksum: the source's (in extract) and the
# staged rows' (in reconcile, another database) must print alike.
STABLE_TEXT = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY';"
    " SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1;"
    " SET LOCAL bytea_output = 'hex'"
)


def table(name: str) -> sql.Identifier:
    return sql.Identifier(*table_parts(name))


def staging_name(migration_id: str, stage: str) -> str:
    """`migrator_staging.<stage>_<digest of the migration id>`."""
    digest = hashlib.sha256(migration_id.encode()).hexdigest()[:32]
    return f"{STAGING_SCHEMA}.{stage}_{digest}"


def staging(migration_id: str, stage: str) -> sql.Identifier:
    return table(staging_name(migration_id, stage))


def columns(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def create_like(target: sql.Identifier, defs: Sequence[tuple[str, str]], key: str) -> sql.Composed:
    """A table with the given column definitions and `key` as primary key."""
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in defs
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
        target, cols, sql.Identifier(key)
    )


def key_range(key: str, after: str | None, upto: str | None) -> sql.Composable:
    """`key > after AND key <= upto`, each side only when given (text literals
    take the key's type)."""
    parts: list[sql.Composable] = [sql.SQL("true")]
    if after is not None:
        parts.append(sql.SQL("{} > {}").format(sql.Identifier(key), sql.Literal(after)))
    if upto is not None:
        parts.append(sql.SQL("{} <= {}").format(sql.Identifier(key), sql.Literal(upto)))
    return sql.SQL(" AND ").join(parts)


def next_batch(
    src: sql.Identifier, key: str, after: str | None, upto: str | None, size: int
) -> sql.Composed:
    """The last key and the row count of the next batch of `size` rows by key.

    The last key is the batch's greatest by the key's own ordering (not
    `max()`, which some orderable types such as uuid do not have)."""
    return sql.SQL(
        "WITH b AS (SELECT {key} AS k FROM {src} WHERE {range} ORDER BY {key} LIMIT {size})"
        # Qualified: a bare `ORDER BY k` would sort by the text output column.
        " SELECT (SELECT b.k::text FROM b ORDER BY b.k DESC LIMIT 1), (SELECT count(*) FROM b)"
    ).format(key=sql.Identifier(key), src=src, range=key_range(key, after, upto), size=size)


def copy_out(
    src: sql.Identifier, names: Sequence[str], key: str, after: str | None, upto: str
) -> sql.Composed:
    return sql.SQL(
        "COPY (SELECT {cols} FROM {src} WHERE {range}) TO STDOUT (FORMAT binary)"
    ).format(cols=columns(names), src=src, range=key_range(key, after, upto))


def copy_in(dst: sql.Identifier, names: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(dst, columns(names))


def expression(col: Column) -> sql.Composable:
    """The SQL computing one transformed column, without its alias."""
    if len(col.sources) == 1:
        expr: sql.Composable = sql.Identifier(col.sources[0])
    else:
        parts = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(s)) for s in col.sources
        )
        expr = sql.SQL("concat_ws({}, {})").format(sql.Literal(col.separator), parts)
    if col.trim:
        expr = sql.SQL("btrim(({})::text)").format(expr)
    if col.case:
        expr = sql.SQL("{}(({})::text)").format(sql.SQL(col.case), expr)
    if col.value_map:
        expr = _value_map(col, expr)
    if col.cast:
        expr = sql.SQL("({})::{}").format(expr, sql.SQL(col.cast))
    if col.default is not None:
        expr = sql.SQL("coalesce({}, {})").format(expr, sql.Literal(str(col.default)))
    return expr


def _value_map(col: Column, expr: sql.Composable) -> sql.Composable:
    text = sql.SQL("({})::text").format(expr)
    whens = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(old), _text_literal(new))
        for old, new in col.value_map
    )
    otherwise = text if col.map_keeps_others else _text_literal(col.map_else)
    return sql.SQL("CASE {} {} ELSE {} END").format(text, whens, otherwise)


def _text_literal(value: object) -> sql.Composable:
    return sql.SQL("NULL::text") if value is None else sql.Literal(str(value))


def select_list(plan: Sequence[Column]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(expression(c), sql.Identifier(c.target)) for c in plan
    )


def transform_into(
    dst: sql.Identifier,
    src: sql.Identifier,
    plan: Sequence[Column],
    key: str,
    after: str | None,
    upto: str,
) -> sql.Composed:
    return sql.SQL("INSERT INTO {dst} ({cols}) SELECT {exprs} FROM {src} WHERE {range}").format(
        dst=dst,
        cols=columns([c.target for c in plan]),
        exprs=select_list(plan),
        src=src,
        range=key_range(key, after, upto),
    )


def create_transformed(
    dst: sql.Identifier, src: sql.Identifier, plan: Sequence[Column]
) -> sql.Composed:
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} AS SELECT {} FROM {} WITH NO DATA").format(
        dst, select_list(plan), src
    )


def failing(rule: Rule, rows: sql.Identifier) -> sql.Composed:
    """The condition under which a row (alias `s`) breaks `rule`; NULL never
    breaks a rule other than not_null."""
    c = sql.SQL("s.{}").format(sql.Identifier(rule.column))
    if rule.kind == "not_null":
        cond: sql.Composable = sql.SQL("{} IS NULL").format(c)
    elif rule.kind == "unique":
        cond = sql.SQL(
            "{c} IN (SELECT d.{col} FROM {rows} AS d GROUP BY d.{col} HAVING count(*) > 1)"
        ).format(c=c, col=sql.Identifier(rule.column), rows=rows)
    elif rule.kind == "range":
        cond = _range(c, rule.param("min"), rule.param("max"))
    elif rule.kind == "pattern":
        cond = sql.SQL("({})::text !~ {}").format(c, sql.Literal(rule.param("pattern")))
    elif rule.kind == "allowed":
        values = sql.SQL(", ").join(sql.Literal(v) for v in rule.param("values"))
        cond = sql.SQL("({})::text NOT IN ({})").format(c, values)
    else:
        cond = sql.SQL(
            "{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {ref} AS r WHERE r.{refcol} = {c})"
        ).format(
            c=c, ref=table(rule.param("table")), refcol=sql.Identifier(rule.param("references"))
        )
    return sql.SQL("coalesce(({}), false)").format(cond)


def _range(c: sql.Composable, low: object, high: object) -> sql.Composable:
    bounds: list[sql.Composable] = []
    if low is not None:
        bounds.append(sql.SQL("{} < {}").format(c, sql.Literal(str(low))))
    if high is not None:
        bounds.append(sql.SQL("{} > {}").format(c, sql.Literal(str(high))))
    return sql.SQL(" OR ").join(bounds)


def rule_check(rule: Rule, rows: sql.Identifier, key: str) -> sql.Composed:
    """Rows breaking `rule`, and up to SAMPLE_KEYS of their keys."""
    return sql.SQL(
        "SELECT count(*), (array_agg(s.{key}::text ORDER BY s.{key}))[1:{n}]"
        " FROM {rows} AS s WHERE {cond}"
    ).format(key=sql.Identifier(key), n=SAMPLE_KEYS, rows=rows, cond=failing(rule, rows))


def failing_any(rules: Sequence[Rule], rows: sql.Identifier) -> sql.Composed:
    """Rows breaking at least one rule, and all rows."""
    conds = sql.SQL(" OR ").join(failing(r, rows) for r in rules) if rules else sql.SQL("false")
    return sql.SQL("SELECT count(*) FILTER (WHERE {}), count(*) FROM {} AS s").format(conds, rows)


def upsert(
    target: sql.Identifier,
    rows: sql.Identifier,
    names: Sequence[str],
    key: str,
    after: str | None,
    upto: str,
) -> sql.Composed:
    others = [n for n in names if n != key]
    action = (
        sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in others
            )
        )
        if others
        else sql.SQL("DO NOTHING")
    )
    return sql.SQL(
        "INSERT INTO {target} ({cols}) SELECT {cols} FROM {rows} WHERE {range}"
        " ON CONFLICT ({key}) {action}"
    ).format(
        target=target,
        cols=columns(names),
        rows=rows,
        range=key_range(key, after, upto),
        key=sql.Identifier(key),
        action=action,
    )


def checksum(
    rel: sql.Identifier, names: Sequence[str], within: sql.Identifier | None = None, key: str = ""
) -> sql.Composed:
    """Count and an order-independent checksum of `names` over `rel` (only the
    keys present in `within`, when given)."""
    where: sql.Composable = sql.SQL("")
    if within is not None:
        where = sql.SQL(" WHERE EXISTS (SELECT 1 FROM {} AS w WHERE w.{k} = s.{k})").format(
            within, k=sql.Identifier(key)
        )
    row = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(n)) for n in names)
    return sql.SQL(
        "SELECT count(*), coalesce(sum(hashtextextended(ROW({})::text, 0)), 0)::text FROM {} AS s{}"
    ).format(row, rel, where)


def split_points(rows: sql.Identifier, key: str, parts: int, total: int) -> list[sql.Composed]:
    """Queries for the keys that split `rows` into `parts` ranges of equal size."""
    return [
        # Qualified: a bare `ORDER BY k` would sort by the text output column.
        sql.SQL(
            "SELECT s.{k}::text AS edge FROM {rows} AS s ORDER BY s.{k} OFFSET {n} LIMIT 1"
        ).format(k=sql.Identifier(key), rows=rows, n=total * i // parts - 1)
        for i in range(1, parts)
    ]

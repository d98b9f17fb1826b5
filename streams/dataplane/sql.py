"""SQL for the phases, composed from the parsed spec with psycopg's `sql`
module: names are always quoted identifiers, values always literals.

Staging lives in the target database, schema `migrator_staging`: one table
per migration, `rows_*`, the source's rows in the target's shape (the mapping
applied as they were read), without indexes. Its name derives from the
migration id. A new target table is this table, indexed and moved into place.
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


def columns(names: Sequence[str], alias: str | None = None) -> sql.Composed:
    """`a, b`, or `alias.a, alias.b`."""
    return sql.SQL(", ").join(_column(n, alias) for n in names)


def _column(name: str, alias: str | None) -> sql.Composable:
    if alias is None:
        return sql.Identifier(name)
    return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(name))


def key_text(key: Sequence[str], alias: str) -> sql.Composed:
    """A row's key as text: its one column's, or a composite key's row, `(1,7)`."""
    if len(key) == 1:
        return sql.SQL("{}::text").format(_column(key[0], alias))
    return sql.SQL("ROW({})::text").format(columns(key, alias))


def key_match(key: Sequence[str], left: str, right: str) -> sql.Composed:
    """`left.a = right.a AND left.b = right.b`: the two rows have one key."""
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(_column(k, left), _column(k, right)) for k in key
    )


def copy_out(src: sql.Identifier, exprs: sql.Composable, where: sql.Composable) -> sql.Composed:
    return sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT binary)").format(
        exprs, src, where
    )


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


SHAPE = sql.Identifier("pg_temp", "migrator_shape")


def create_shape(defs: Sequence[tuple[str, str]]) -> sql.Composed:
    """A temporary, empty table shaped like the source (gone at commit)."""
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in defs
    )
    return sql.SQL("CREATE TEMP TABLE migrator_shape ({}) ON COMMIT DROP").format(cols)


def create_staged(dst: sql.Identifier, plan: Sequence[Column]) -> sql.Composed:
    """The staging table in the mapping's shape, typed as the mapping types
    the source's columns (read from the shape table), without rows or indexes."""
    return sql.SQL("CREATE TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
        dst, select_list(plan), SHAPE
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


def rules_scan(rules: Sequence[Rule], rows: sql.Identifier, key: Sequence[str]) -> sql.Composed:
    """One scan of `rows`: all rows, rows breaking any rule, then per rule the
    rows breaking it and up to SAMPLE_KEYS of their keys (in key order)."""
    conds = [failing(r, rows) for r in rules]
    per_rule = [
        sql.SQL(
            "count(*) FILTER (WHERE {c}),"
            " (array_agg({text} ORDER BY {order}) FILTER (WHERE {c}))[1:{n}]"
        ).format(c=c, text=key_text(key, "s"), order=columns(key, "s"), n=SAMPLE_KEYS)
        for c in conds
    ]
    anyone = sql.SQL(" OR ").join(conds) if conds else sql.SQL("false")
    return sql.SQL("SELECT count(*), count(*) FILTER (WHERE {}), {} FROM {} AS s").format(
        anyone, sql.SQL(", ").join(per_rule) if per_rule else sql.SQL("NULL"), rows
    )


def merge(
    target: sql.Identifier,
    rows: sql.Identifier,
    names: Sequence[str],
    key: Sequence[str],
    how: str,
) -> sql.Composed:
    """Insert every staged row into an existing target: `append` as they are,
    `upsert` updating the rows whose key (all its columns) is there already."""
    insert = sql.SQL("INSERT INTO {target} ({cols}) SELECT {cols} FROM {rows}").format(
        target=target, cols=columns(names), rows=rows
    )
    if how != "upsert":
        return insert
    others = [n for n in names if n not in key]
    action = (
        sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in others
            )
        )
        if others
        else sql.SQL("DO NOTHING")
    )
    return sql.SQL("{} ON CONFLICT ({}) {}").format(insert, columns(key), action)

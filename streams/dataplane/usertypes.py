"""User-defined column types and the target database.

Binary COPY carries a value, not its type: the target must have every type a
source column is built on (through arrays, a domain's base type, a composite
type's attributes) under the same schema-qualified name and with the same
definition. Before any row moves, each such type is found identical in the
target, or created there from the source's definition (enums, domains,
composite types), or refused with a reason that names the column and the type.

Catalogs are read with an empty search_path, so every name PostgreSQL prints
(a domain's base type, an attribute's type, a CHECK) is schema-qualified and
means the same in both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from streams.dataplane import catalog
from streams.dataplane.database import Conn, Database
from streams.dataplane.errors import SpecError

# FirstNormalObjectId: types below it come with PostgreSQL and have the same
# OID and definition in every database.
FIRST_USER_OID = 16384
CREATABLE = {"e": "enum", "d": "domain", "c": "composite type"}
# One type's identity and definition; the same query reads source and target.
DESCRIBE = """
SELECT t.oid, n.nspname, t.typname, t.typtype,
  t.typtype = 'b' AND t.typcategory = 'A' AND t.typelem <> 0, CASE t.typtype
  WHEN 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e
                      WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
  WHEN 'd' THEN ARRAY[format_type(t.typbasetype, t.typtypmod),
                      CASE WHEN t.typnotnull THEN 'NOT NULL' ELSE 'NULL' END]
                || ARRAY(SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
                         WHERE c.contypid = t.oid AND c.contype = 'c' ORDER BY 1)
  WHEN 'c' THEN ARRAY(SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                      FROM pg_attribute a WHERE a.attrelid = t.typrelid
                      AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
  ELSE ARRAY[]::text[] END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
"""
# What a type is built on: an array's element, a domain's base, a composite's attributes.
PARTS = """
SELECT p FROM pg_type t, LATERAL (
  SELECT t.typelem WHERE t.typtype = 'b' AND t.typcategory = 'A'
  UNION ALL SELECT t.typbasetype WHERE t.typtype = 'd'
  UNION ALL SELECT a.atttypid FROM pg_attribute a
            WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0
            AND NOT a.attisdropped ORDER BY 1) AS parts(p)
WHERE t.oid = %s AND p <> 0
"""


@dataclass(frozen=True)
class UserType:
    oid: int
    schema: str
    name: str
    kind: str  # pg_type.typtype: e enum, d domain, c composite, b base, r range, ...
    array: bool  # an array type comes with its element type, never on its own
    shape: tuple[str, ...]  # enum labels | base type, NULL-ness, CHECKs | attributes

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def same_as(self, other: UserType) -> bool:
        return (self.kind, self.shape) == (other.kind, other.shape)

    def create(self) -> sql.Composed:
        """The statement that makes this type in another database."""
        name = sql.Identifier(self.schema, self.name)
        if self.kind == "e":
            labels = sql.SQL(", ").join(sql.Literal(label) for label in self.shape)
            return sql.SQL("CREATE TYPE {} AS ENUM ({})").format(name, labels)
        if self.kind == "d":
            base, nullness, *checks = self.shape  # PostgreSQL's own deparsed SQL
            rest = [nullness, *checks]
            return sql.SQL("CREATE DOMAIN {} AS {} {}").format(
                name, sql.SQL(base), sql.SQL(" ").join(sql.SQL(p) for p in rest)
            )
        attributes = sql.SQL(", ").join(sql.SQL(a) for a in self.shape)
        return sql.SQL("CREATE TYPE {} AS ({})").format(name, attributes)


@dataclass(frozen=True)
class Need:
    """A type the column `column` (of type `column_type`) is built on."""

    column: str
    column_type: str
    type: UserType


async def ensure(source: Database, target: Database, table: str) -> list[str]:
    """Make sure the target has every user-defined type the columns of `table`
    (in the source) need, creating the missing ones; SpecError when one cannot
    be. Returns the types created."""
    needs = await source.transaction(lambda conn: _needs(conn, table))
    if not needs:
        return []
    return await target.transaction(lambda conn: _provide(conn, needs, target.name))


async def _needs(conn: Conn, table: str) -> list[Need]:
    """Every user-defined type the columns need, the parts of each before it."""
    relation = await catalog.relation(conn, table)  # resolved by the usual search_path
    await _qualified_names(conn)
    columns = await (
        await conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), atttypid FROM pg_attribute"
            " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (relation,),
        )
    ).fetchall()
    needs: list[Need] = []
    seen: set[int] = set()
    for column, column_type, oid in columns:
        for found in await _built_on(conn, int(oid), seen):
            needs.append(Need(str(column), str(column_type), found))
    return needs


async def _built_on(conn: Conn, oid: int, seen: set[int]) -> list[UserType]:
    """The user-defined types `oid` is built on (itself included), parts first."""
    if oid < FIRST_USER_OID or oid in seen:
        return []
    seen.add(oid)
    found: list[UserType] = []
    for (part,) in await (await conn.execute(PARTS, (oid,))).fetchall():
        found += await _built_on(conn, int(part), seen)
    described = await _describe(conn, sql.SQL("t.oid = {}").format(sql.Literal(oid)))
    if described is not None and not described.array:
        found.append(described)
    return found


async def _describe(conn: Conn, where: sql.Composable) -> UserType | None:
    query = sql.SQL(DESCRIBE + " WHERE {}").format(where)
    row = await (await conn.execute(query)).fetchone()
    if row is None:
        return None
    oid, schema, name, kind, array, shape = row
    return UserType(int(oid), str(schema), str(name), str(kind), bool(array), tuple(shape))


async def _provide(conn: Conn, needs: Sequence[Need], connection: str) -> list[str]:
    """In the target: each needed type found identical, or created; else refused."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('migrator.user-types'))")
    await _qualified_names(conn)
    created: list[str] = []
    for need in needs:
        wanted = need.type
        where = sql.SQL("n.nspname = {} AND t.typname = {}").format(
            sql.Literal(wanted.schema), sql.Literal(wanted.name)
        )
        there = await _describe(conn, where)
        if there is not None and wanted.same_as(there):
            continue
        await _refuse_unless_creatable(conn, need, there, connection)
        await conn.execute(wanted.create())
        created.append(wanted.qualified)
    return created


async def _refuse_unless_creatable(
    conn: Conn, need: Need, there: UserType | None, connection: str
) -> None:
    wanted = need.type
    subject = f"column {need.column} has type {need.column_type},"
    if need.column_type.removesuffix("[]") != wanted.qualified:
        subject += f" built on {wanted.qualified},"
    if there is not None:
        raise SpecError(
            f"{subject} which the target database {connection} has with another definition:"
            f" {_definition(there)} there, {_definition(wanted)} in the source;"
            " make them the same before migrating"
        )
    if wanted.kind not in CREATABLE:
        raise SpecError(
            f"{subject} which the target database {connection} does not have: only enums,"
            " domains and composite types are created there; install it first"
            " (an extension's type: CREATE EXTENSION)"
        )
    if not await _schema_exists(conn, wanted.schema):
        raise SpecError(
            f"{subject} which the target database {connection} does not have, nor its"
            f" schema {wanted.schema}: create the schema there first"
        )


def _definition(found: UserType) -> str:
    kind = CREATABLE.get(found.kind, f"type of kind {found.kind!r}")
    return f"{kind} ({', '.join(found.shape)})"


async def _schema_exists(conn: Conn, schema: str) -> bool:
    found = await (
        await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    ).fetchone()
    return found is not None


async def _qualified_names(conn: Conn) -> None:
    """For this transaction: PostgreSQL prints every name outside pg_catalog qualified."""
    await conn.execute("SELECT set_config('search_path', '', true)")

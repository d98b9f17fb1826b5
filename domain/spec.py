"""The declarative parts of a spec: the source key, the column mapping and the
validation rules.

Pure: parsed and checked here (the API rejects a bad spec with the message),
turned into SQL in `streams.dataplane.sql`. Nothing in a spec is code: a cast is
a type name of a restricted shape, every name is quoted as an identifier and
every value travels as a literal.

Source key: the column that identifies a source row, or several separated by
commas (`"tenant_id, id"`: a composite key, its columns in that order; spaces
around a name are ignored), each named once, at most MAX_KEY_COLUMNS (an
index's limit in PostgreSQL). The record keeps the text as it was given.

Mapping: `{target_column: how}` applied to the source columns, which pass
through unchanged unless the mapping says otherwise. `how` is

- `"source_column"`: rename (the source column is gone under its old name,
  unless the mapping also names it as a target);
- `null` or `{"drop": true}`: drop the column named by the key;
- an object: a computed column, from one column (`"from"`, default: the key;
  moved like a rename) or several (`"concat": [...]`, `"separator"`; the
  parts stay), then in this order
  `"trim": true`, `"case": "upper"|"lower"`, `"map": {old: new}` (with
  `"map_else"`, default: keep the value), `"cast": "type"` (a type name, in any
  letter case), `"default": value` for NULLs. A computed column named like a
  source column replaces it in place.

Rules: `{"rule": kind, "column": c, ...}` with kind `not_null`, `unique`,
`range` (`min`, `max`), `pattern` (`pattern`, a POSIX regex), `allowed`
(`values`), `foreign_key` (`table`, `references`); optional `name`.

A pattern runs in PostgreSQL's regex engine, which matches in time linear in
the value except for two constructs, refused here: back references (`\\1` to
`\\9` and longer numbers; the engine backtracks over them, exponential in the
worst case) and lookaround constraints (`(?=`, `(?!`, `(?<=`, `(?<!`; each is a
scan of its own from every position tried, quadratic). `\\k<name>` is refused
as a back reference too. A pattern is at most MAX_PATTERN characters: the
engine's automaton grows with it. The validation phase's statement timeout
(PHASE_VALIDATION_TIMEOUT_SECONDS) bounds what is left.

Names are 1 to 63 characters. `api.spec_schema` states all of this as JSON
Schema for the API's document; a change here is a change there.

`parse_spec` parses a whole spec: its options (`on_existing`, `mode`:
domain.options), its key, its mapping and its rules, and keeps `cdc` (a
migration that captures the source's changes after load: domain.live).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from domain.commands import MigrationSpec
from domain.errors import SpecError
from domain.options import SHOWN, Mode, OnExisting, parse_options
from domain.text import unstorable

MAX_NAME = 63
# A type name, any letter case, as the whole value (ASCII only: the OpenAPI
# document states the same pattern, and a JSON Schema validator reads it alike).
CAST_PATTERN = (
    r"^[A-Za-z][A-Za-z0-9_]*( [A-Za-z][A-Za-z0-9_]*)*(\([0-9]{1,4}(, ?[0-9]{1,4})?\))?(\[\])?$"
)
CAST = re.compile(CAST_PATTERN)  # fullmatch: no newline slips past "$"
MAX_PATTERN = 256
MAX_KEY_COLUMNS = 32  # PostgreSQL's INDEX_MAX_KEYS: the target's primary key is an index
# Escapes that PostgreSQL's ARE engine reads as a back reference (a nonzero
# digit, octal or not) or that other dialects use for one (\k<name>).
BACKREF_ESCAPES = frozenset("123456789k")
LOOKAROUNDS = ("(?=", "(?!", "(?<=", "(?<!")
COLUMN_KEYS = frozenset(
    {"from", "concat", "separator", "trim", "case", "map", "map_else", "cast", "default", "drop"}
)


class RuleKind(StrEnum):
    """A rule's kind: its value is the spec's `"rule"` string."""

    NOT_NULL = "not_null"
    UNIQUE = "unique"
    RANGE = "range"
    PATTERN = "pattern"
    ALLOWED = "allowed"
    FOREIGN_KEY = "foreign_key"


RULE_KEYS: dict[RuleKind, frozenset[str]] = {
    RuleKind.NOT_NULL: frozenset(),
    RuleKind.UNIQUE: frozenset(),
    RuleKind.RANGE: frozenset({"min", "max"}),
    RuleKind.PATTERN: frozenset({"pattern"}),
    RuleKind.ALLOWED: frozenset({"values"}),
    RuleKind.FOREIGN_KEY: frozenset({"table", "references"}),
}
Scalar = str | int | float | bool | None
T = TypeVar("T")


@dataclass(frozen=True)
class Column:
    """One column of the transformed rows and how it is computed."""

    target: str
    sources: tuple[str, ...]
    separator: str = ""
    trim: bool = False
    case: str | None = None
    value_map: tuple[tuple[str, Scalar], ...] = ()
    map_else: Scalar = None
    map_keeps_others: bool = True
    cast: str | None = None
    default: Scalar = None

    @property
    def is_plain(self) -> bool:
        """A column copied as is (renamed or not)."""
        return self == Column(self.target, self.sources[:1]) and len(self.sources) == 1


@dataclass(frozen=True)
class ColumnMapping:
    """The parsed mapping: renames, drops and computed columns by target name."""

    entries: tuple[tuple[str, Column | None], ...]  # None: drop

    def plan(self, source_columns: Sequence[str]) -> tuple[Column, ...]:
        """The output columns for a source with `source_columns`, in order."""
        missing = sorted(
            {s for _, c in self.entries if c for s in c.sources} - set(source_columns)
            | {t for t, c in self.entries if c is None} - set(source_columns)
        )
        if missing:
            raise SpecError(f"mapping names columns the source does not have: {missing}")
        by_target = dict(self.entries)
        moved = {c.sources[0] for t, c in self.entries if c and len(c.sources) == 1} - {
            t for t, _ in self.entries
        }
        out = [
            by_target.get(name) or Column(name, (name,))
            for name in source_columns
            if (by_target[name] is not None if name in by_target else name not in moved)
        ]
        placed = {c.target for c in out}
        out += [c for t, c in self.entries if c is not None and t not in placed]
        return tuple(out)


@dataclass(frozen=True)
class Rule:
    """One data-quality rule over the transformed rows."""

    kind: RuleKind
    column: str
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str) -> Any:
        return dict(self.params).get(key)


@dataclass(frozen=True)
class ParsedSpec:
    """A spec as the data plane runs it: every part checked and typed."""

    mapping: ColumnMapping
    rules: tuple[Rule, ...]
    on_existing: OnExisting
    mode: Mode
    key: tuple[str, ...]  # the source key's columns, in order
    cdc: bool = False  # the source's changes are captured after load (domain.live)

    @property
    def copy_only(self) -> bool:
        """The rows copied as they are: no transform, no validation."""
        return self.mode is Mode.COPY_ONLY


def parse_spec(spec: MigrationSpec) -> ParsedSpec:
    """Parse a whole spec; SpecError says what is wrong (the options first)."""
    on_existing, mode = parse_options(spec.on_existing, spec.mode, spec.mapping, spec.rules)
    key = parse_source_key(spec.source_key)
    mapping, rules = parse_spec_parts(spec.mapping, spec.rules)
    if not isinstance(spec.cdc, bool):
        raise SpecError(f"cdc must be true or false, not {spec.cdc!r:.{SHOWN}}")
    return ParsedSpec(mapping, rules, on_existing, mode, key, spec.cdc)


def parse_source_key(text: object) -> tuple[str, ...]:
    """The source key's columns, in order: one name, or several separated by
    commas. SpecError when a name is empty or repeated, or there are too many."""
    if not isinstance(text, str) or not all(part.strip() for part in text.split(",")):
        shown = repr(text) if len(repr(text)) <= SHOWN else f"{repr(text)[:SHOWN]}…"
        raise SpecError(
            f"source_key must name a column, or several separated by commas, not {shown}"
        )
    names = tuple(_stored(part.strip(), "source_key") for part in text.split(","))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"source_key names {', '.join(repeated)} more than once")
    if len(names) > MAX_KEY_COLUMNS:
        raise SpecError(f"source_key has {len(names)} columns; a key has at most {MAX_KEY_COLUMNS}")
    return names


def key_text(columns: Sequence[str]) -> str:
    """A key as messages name it: `id`, or `(tenant_id, id)` for a composite key."""
    return columns[0] if len(columns) == 1 else f"({', '.join(columns)})"


def parse_spec_parts(
    mapping: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]
) -> tuple[ColumnMapping, tuple[Rule, ...]]:
    """Parse a spec's mapping and rules; SpecError says what is wrong."""
    return parse_mapping(mapping), tuple(parse_rule(i, r) for i, r in enumerate(rules))


def parse_mapping(mapping: Mapping[str, Any]) -> ColumnMapping:
    if not isinstance(mapping, Mapping):
        raise SpecError("mapping must be an object of target column -> rule")
    return ColumnMapping(
        tuple((_name(t, "mapping key"), _column(t, how)) for t, how in mapping.items())
    )


def _column(target: str, how: Any) -> Column | None:
    if how is None:
        return None
    if isinstance(how, str):
        return Column(target, (_name(how, f"mapping[{target!r}]"),))
    if not isinstance(how, Mapping):
        raise SpecError(f"mapping[{target!r}] must be a column name, null or an object")
    unknown = sorted(set(how) - COLUMN_KEYS)
    if unknown:
        raise SpecError(
            f"mapping[{target!r}] has unknown keys {unknown}; allowed: {sorted(COLUMN_KEYS)}"
        )
    if "drop" in how:
        if how.get("drop") is not True or len(how) > 1:
            raise SpecError(f"mapping[{target!r}]: drop is true, with no other keys")
        return None
    return Column(target, _sources(target, how), **_steps(target, how))


def _sources(target: str, how: Mapping[str, Any]) -> tuple[str, ...]:
    where = f"mapping[{target!r}]"
    if "from" in how and "concat" in how:
        raise SpecError(f"{where}: give either from or concat, not both")
    if "concat" in how:
        parts = how["concat"]
        if not isinstance(parts, list) or not parts:
            raise SpecError(f"{where}.concat must be a non-empty list of column names")
        return tuple(_name(p, f"{where}.concat") for p in parts)
    if "separator" in how:
        raise SpecError(f"{where}: separator goes with concat")
    return (_name(how.get("from", target), f"{where}.from"),)


def _steps(target: str, how: Mapping[str, Any]) -> dict[str, Any]:
    where = f"mapping[{target!r}]"
    steps: dict[str, Any] = {}
    if "separator" in how:
        steps["separator"] = _typed(how["separator"], str, f"{where}.separator")
    if "trim" in how:
        steps["trim"] = _typed(how["trim"], bool, f"{where}.trim")
    if "case" in how:
        if how["case"] not in ("upper", "lower"):
            raise SpecError(f"{where}.case must be 'upper' or 'lower'")
        steps["case"] = how["case"]
    if "map" in how:
        steps.update(_value_map(where, how))
    elif "map_else" in how:
        raise SpecError(f"{where}: map_else goes with map")
    if "cast" in how:
        steps["cast"] = _cast(how["cast"], f"{where}.cast")
    if "default" in how:
        steps["default"] = _scalar(how["default"], f"{where}.default")
    return steps


def _value_map(where: str, how: Mapping[str, Any]) -> dict[str, Any]:
    table = how["map"]
    if not isinstance(table, Mapping) or not table:
        raise SpecError(f"{where}.map must be a non-empty object of old -> new value")
    pairs = tuple(
        (_stored(str(k), f"{where}.map"), _scalar(v, f"{where}.map[{k!r}]"))
        for k, v in table.items()
    )
    steps: dict[str, Any] = {"value_map": pairs}
    if "map_else" in how:
        steps["map_else"] = _scalar(how["map_else"], f"{where}.map_else")
        steps["map_keeps_others"] = False
    return steps


def parse_rule(index: int, raw: Mapping[str, Any]) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where} must be an object")
    given = raw.get("rule")
    if not isinstance(given, str) or given not in RULE_KEYS:  # a list is not even hashable
        kinds = sorted(k.value for k in RuleKind)
        raise SpecError(f"{where}.rule must be one of {kinds}, not {given!r}")
    kind = RuleKind(given)
    unknown = sorted(set(raw) - {"rule", "column", "name"} - RULE_KEYS[kind])
    if unknown:
        raise SpecError(f"{where} ({kind}) has unknown keys {unknown}")
    column = _name(raw.get("column"), f"{where}.column")
    given_name = raw.get("name")
    name = f"{kind}({column})" if given_name in (None, "") else given_name
    name = _typed(name, str, f"{where}.name")
    try:
        params = tuple(
            (k, _rule_param(kind, k, raw.get(k), where)) for k in sorted(RULE_KEYS[kind])
        )
        if kind is RuleKind.RANGE and raw.get("min") is None and raw.get("max") is None:
            raise SpecError(f"{where}: range needs min or max")
    except SpecError as exc:  # the field's path first (the API's 422 names it), then the rule
        raise SpecError(f"{exc} (rule {name!r})") from None
    return Rule(kind=kind, column=column, name=name, params=params)


def _rule_param(kind: RuleKind, key: str, value: Any, where: str) -> Any:
    if kind is RuleKind.RANGE:
        return _scalar(value, f"{where}.{key}")
    if kind is RuleKind.PATTERN:
        return _pattern(value, f"{where}.pattern")
    if kind is RuleKind.ALLOWED:
        if not isinstance(value, list) or not value:
            raise SpecError(f"{where}.values must be a non-empty list")
        return tuple(str(_scalar(v, f"{where}.values")) for v in value)
    if key == "table":
        return _table(value, f"{where}.table")
    return _name(value, f"{where}.{key}")


def _pattern(value: Any, where: str) -> str:
    pattern = str(_typed(value, str, where))
    if len(pattern) > MAX_PATTERN:
        raise SpecError(f"{where} is {len(pattern)} characters long; at most {MAX_PATTERN}")
    slow = _slow_construct(pattern)
    if slow:
        what, found, cost = slow
        raise SpecError(
            f"{where}: {what} ({found!r}) are not allowed: PostgreSQL may take {cost} time"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise SpecError(f"{where} is not a regular expression: {exc}") from None
    return pattern


def _slow_construct(pattern: str) -> tuple[str, str, str] | None:
    """What in `pattern` PostgreSQL does not run in linear time, if anything:
    (what, where it starts, the cost). An escape is read as a pair, so an
    escaped backslash before a digit passes; a lookaround's opening is
    refused anywhere (even inside brackets, where it would be plain text)."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            if pattern[i + 1 : i + 2] in BACKREF_ESCAPES:
                return "back references", pattern[i : i + 2], "exponential"
            i += 2
        elif pattern.startswith(LOOKAROUNDS, i):
            opening = next(o for o in LOOKAROUNDS if pattern.startswith(o, i))
            return "lookaround constraints", opening, "quadratic"
        else:
            i += 1
    return None


def table_parts(name: str) -> tuple[str, ...]:
    """`schema.table` or `table`, as identifier parts."""
    return tuple(name.split(".", 1)) if "." in name else (name,)


def _table(value: Any, where: str) -> str:
    text = str(_typed(value, str, where))
    for part in table_parts(text):
        _name(part, where)
    return text


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise SpecError(f"{where} must be a name of 1 to {MAX_NAME} characters, not {value!r}")
    return _stored(value, where)


def _cast(value: Any, where: str) -> str:
    text = str(_typed(value, str, where))
    if not CAST.fullmatch(text):
        raise SpecError(f"{where}: {value!r} is not a type name (e.g. integer, numeric(10,2))")
    return text.lower()


def _scalar(value: Any, where: str) -> Scalar:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise SpecError(f"{where} must be a string, number, boolean or null")
    return _stored(value, where)


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise SpecError(f"{where} must be a {kind.__name__}")
    return _stored(value, where)


def _stored(value: T, where: str) -> T:
    """`value`, when every store can hold it (domain.text): a literal of a spec
    travels in events the read model keeps."""
    found = unstorable(value, where)
    if found is not None:
        raise SpecError(str(found))
    return value

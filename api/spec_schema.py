"""The JSON Schema of a spec's source key, mapping, rules and options: the
shapes `domain.spec` and `domain.options` parse, so that what the document
calls valid the parser accepts, and what the parser refuses the document
calls invalid (a test holds the two equal). One exception, stated in the
key's description: a pattern cannot say that a composite key names each
column once; the parser refuses a repeated one.

A rule's `pattern` is `format: regex` (ECMA-262), which `regex_refusal`
checks as a JSON Schema validator does; the parser also compiles it with
Python's `re` (an ECMA pattern Python cannot read is refused: the 422 says
so). Whether a mapping names columns the source really has is checked when
the migration runs. Text holds no NUL (U+0000): no store can hold it
(domain.text); lone surrogates cannot be sent as UTF-8 at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema_rs

from domain.options import Mode, OnExisting
from domain.spec import (
    CAST_PATTERN,
    MAX_KEY_COLUMNS,
    MAX_NAME,
    MAX_PATTERN,
    RULE_KEYS,
    RuleKind,
)

Schema = dict[str, Any]
NO_NUL = "^[^\\x00]*$"
TEXT: Schema = {"type": "string", "pattern": NO_NUL}
NAME: Schema = {**TEXT, "minLength": 1, "maxLength": MAX_NAME}
SCALAR: Schema = {"type": ["string", "number", "boolean", "null"], "pattern": NO_NUL}
VALUE: Schema = {**SCALAR, "type": ["string", "number", "boolean"]}
# `table` or `schema.table`: each part a name (the part after the first dot may hold dots)
TABLE: Schema = {
    "type": "string",
    "pattern": f"^[^.\\x00]{{1,{MAX_NAME}}}(\\.[^\\x00]{{1,{MAX_NAME}}})?$",
}
DROP: Schema = {
    "type": "object",
    "required": ["drop"],
    "properties": {"drop": {"const": True}},
    "additionalProperties": False,
    "description": "drop the column named by the key (as null does)",
}
COMPUTED: Schema = {
    "type": "object",
    "description": "a computed column: from one column (`from`, default: the key) or several"
    " (`concat`, joined by `separator`), then trim, case, map (else map_else), cast, default",
    "properties": {
        "from": NAME,
        "concat": {"type": "array", "items": NAME, "minItems": 1},
        "separator": TEXT,
        "trim": {"type": "boolean"},
        "case": {"enum": ["upper", "lower"]},
        "map": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": TEXT,
            "additionalProperties": SCALAR,
        },
        "map_else": SCALAR,
        "cast": {
            "type": "string",
            "pattern": CAST_PATTERN,
            "examples": ["integer", "numeric(10,2)", "text[]"],
        },
        "default": SCALAR,
    },
    "additionalProperties": False,
    "not": {"required": ["from", "concat"]},
    "dependentRequired": {"separator": ["concat"], "map_else": ["map"]},
}
COLUMN_MAPPING: Schema = {
    "type": "object",
    "description": "target column -> how: a source column's name (rename), null or"
    ' {"drop": true} (drop), or a computed column; unnamed source columns pass through',
    "propertyNames": NAME,
    "additionalProperties": {"anyOf": [NAME, {"type": "null"}, DROP, COMPUTED]},
}
# A pattern PostgreSQL runs in linear time, as domain.spec reads it: no
# unescaped backslash before a nonzero digit or `k` (a back reference), no
# unescaped `(?=`, `(?!`, `(?<=` or `(?<!` (a lookaround), no NUL. Spelled as a
# plain regular expression (no lookaround of its own, no `not`, so that a
# generator of examples can read it): after an unescaped `(` (and `(?`, `(?<`)
# the next character is constrained; a `(` there starts over.
_ESCAPE = r"\\[^1-9k\x00]"
_OPENS = r"\((?:\(|\?\(|\?<\()*"  # `(`, then more `(`, `?(` or `?<(`
_AFTER_OPEN = (
    rf"(?:[^?\\(\x00]|{_ESCAPE}|\?(?:[^=!<\\(\x00]|{_ESCAPE})|\?<(?:[^=!\\(\x00]|{_ESCAPE}))"
)
LINEAR_REGEX = rf"^(?:[^\\(\x00]|{_ESCAPE}|{_OPENS}{_AFTER_OPEN})*(?:{_OPENS}(?:\?<?)?)?\\?$"
PARAMETERS: dict[RuleKind, dict[str, Schema]] = {
    RuleKind.NOT_NULL: {},
    RuleKind.UNIQUE: {},
    RuleKind.RANGE: {"min": SCALAR, "max": SCALAR},
    RuleKind.PATTERN: {
        "pattern": {
            "type": "string",
            "format": "regex",
            "maxLength": MAX_PATTERN,
            "pattern": LINEAR_REGEX,
        }
    },
    RuleKind.ALLOWED: {"values": {"type": "array", "items": SCALAR, "minItems": 1}},
    RuleKind.FOREIGN_KEY: {"table": TABLE, "references": NAME},
}
# A range needs a bound: min or max, not null.
SOME_BOUND: Schema = {
    "anyOf": [{"required": [bound], "properties": {bound: VALUE}} for bound in ("min", "max")]
}


def _rule(kind: RuleKind) -> Schema:
    parameters = PARAMETERS[kind]
    assert set(parameters) == RULE_KEYS[kind], kind  # the parser's keys, no more, no less
    schema: Schema = {
        "type": "object",
        "required": ["rule", "column", *(() if kind is RuleKind.RANGE else parameters)],
        "properties": {
            "rule": {"const": kind.value},
            "column": NAME,
            "name": {**SCALAR, "type": ["string", "null"]},
            **parameters,
        },
        "additionalProperties": False,
    }
    return {**schema, **SOME_BOUND} if kind is RuleKind.RANGE else schema


RULE: Schema = {
    "description": "a data-quality rule over the transformed rows; `name` defaults to kind(column)",
    "oneOf": [_rule(kind) for kind in RuleKind],
}
_REGEX = jsonschema_rs.validator_for({"format": "regex"}, validate_formats=True)


def regex_refusal(rules: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a pattern rule's `pattern` is not what the document's `format:
    regex` allows (None: each is)."""
    for index, rule in enumerate(rules):
        pattern = rule.get("pattern") if rule.get("rule") == RuleKind.PATTERN else None
        if isinstance(pattern, str) and not _REGEX.is_valid(pattern):
            return f"rules[{index}].pattern is not a regular expression (ECMA-262): {pattern!r}"
    return None


# A table or column name the API takes (a source key's column is one of them).
IDENTIFIER = "[A-Za-z_][A-Za-z0-9_.]{0,127}"
SOURCE_KEY_PATTERN = f"^{IDENTIFIER}( *, *{IDENTIFIER}){{0,{MAX_KEY_COLUMNS - 1}}}$"
SOURCE_KEY: Schema = {
    "type": "string",
    "pattern": SOURCE_KEY_PATTERN,
    "description": "the column that identifies a source row, or several separated by commas"
    f" (a composite key, its columns in that order; each named once, at most {MAX_KEY_COLUMNS})",
    "examples": ["id", "tenant_id, id"],
}
ON_EXISTING: Schema = {
    "type": "string",
    "enum": [o.value for o in OnExisting],
    "description": "what load does when the target table exists: replace its rows"
    " (atomically), append (a key already there fails the load) or upsert (insert or"
    " update by key); a new target table is always created whole",
}
MODE: Schema = {
    "type": "string",
    "enum": [m.value for m in Mode],
    "description": "full (extract, transform, validate, load, reconcile) or copy-only"
    " (the rows as they are, reconciled by count and checksum: no mapping, no rules)",
}
# A copy-only spec has no mapping and no rules (domain.options.check_copy_only).
COPY_ONLY: Schema = {
    "if": {"required": ["mode"], "properties": {"mode": {"const": Mode.COPY_ONLY.value}}},
    "then": {"properties": {"mapping": {"maxProperties": 0}, "rules": {"maxItems": 0}}},
}

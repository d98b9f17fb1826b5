"""Each record's fields as the codec sees them, derived once from its Avro schema.

One shape drives both encodings: it says how the JSON form is checked (as
strictly as Avro checks binary) and how a record converts to and from an Avro
datum. A field's kind is its Avro type without the null branch:

    string, int, long, double, boolean, bytes    as in Avro
    record                                       a named record, by reference
    object, object[]                             JSON text (see below)

A string field with a `"json"` property carries free-form JSON as text: the
Avro field `mapping_json` is the field `mapping` in the dataclass and in the
JSON form, whose value must be a JSON object (`"object"`) or an array of
objects (`"object[]"`). A later schema version may type such a field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

PRIMITIVES = frozenset({"string", "int", "long", "double", "float", "boolean", "bytes"})
JSON_KINDS = frozenset({"object", "object[]"})
FLAT_KINDS = frozenset({"string", "int", "long", "double", "boolean"})
_ALIASES = {"float": "double"}


@dataclass(frozen=True)
class Field:
    name: str  # in the dataclass and the JSON form
    avro_name: str  # in the Avro schema
    kind: str
    nullable: bool
    required: bool  # no default in the schema
    record: str = ""  # the nested record's name, for kind "record"


@dataclass(frozen=True)
class Shape:
    name: str
    fields: tuple[Field, ...]

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)

    @cached_property
    def flat(self) -> bool:
        """True when no field needs converting: the record's attributes are its
        plain form and its Avro datum as they are."""
        return all(f.kind in FLAT_KINDS for f in self.fields)

    @cached_property
    def converted(self) -> tuple[Field, ...]:
        """The fields whose value converts between the record and its Avro datum."""
        return tuple(f for f in self.fields if f.kind not in FLAT_KINDS)


def shape_of(schema: Mapping[str, Any]) -> Shape:
    """The shape of one record schema, as written in its .avsc file."""
    return Shape(short_name(schema["name"]), tuple(_field(raw) for raw in schema["fields"]))


def short_name(fullname: str) -> str:
    return fullname.rsplit(".", 1)[-1]


def _field(raw: Mapping[str, Any]) -> Field:
    name, avro_type = raw["name"], raw["type"]
    nullable = isinstance(avro_type, list) and "null" in avro_type
    if nullable:
        avro_type = _single_branch(name, avro_type)
    required = "default" not in raw
    json_kind = raw.get("json")
    if json_kind is not None:
        if json_kind not in JSON_KINDS or avro_type != "string" or not name.endswith("_json"):
            raise ValueError(f"field {name}: a JSON-text field is a string named *_json")
        return Field(name.removesuffix("_json"), name, json_kind, nullable, required)
    if not isinstance(avro_type, str):
        raise ValueError(f"field {name}: only primitive and named types are supported")
    if avro_type in PRIMITIVES:
        return Field(name, name, _ALIASES.get(avro_type, avro_type), nullable, required)
    return Field(name, name, "record", nullable, required, short_name(avro_type))


def _single_branch(name: str, union: list[Any]) -> Any:
    others = [branch for branch in union if branch != "null"]
    if len(others) != 1 or union[0] != "null":
        raise ValueError(f'field {name}: only ["null", T] unions are supported')
    return others[0]

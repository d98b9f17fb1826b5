"""The OpenAPI document and the app's routes are the same set, both ways."""

from __future__ import annotations

import json

from pydantic import SecretStr

from api.app import create_app
from api.openapi import DOCUMENT
from config import Settings
from domain.options import Mode, OnExisting


def served_routes() -> set[tuple[str, str]]:
    settings = Settings(api={"tokens": SecretStr(json.dumps({"x" * 16: "viewer"}))})
    app = create_app(settings)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }


def documented_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, ops in DOCUMENT["paths"].items() for method in ops}


def test_every_route_is_documented_and_every_documented_route_is_served() -> None:
    assert served_routes() == documented_routes()


def test_every_reference_resolves() -> None:
    text = json.dumps(DOCUMENT)
    names = set(DOCUMENT["components"]["schemas"])
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= names


def test_the_request_bodies_are_the_validation_models() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["CreateMigrationIn"]["additionalProperties"] is False
    assert schemas["SpecIn"]["properties"]["batch_size"]["minimum"] == 1


def test_a_specs_options_are_documented_with_the_values_the_domain_takes() -> None:
    spec = DOCUMENT["components"]["schemas"]["SpecIn"]
    options = spec["properties"]

    assert options["on_existing"]["enum"] == [o.value for o in OnExisting]
    assert options["mode"]["enum"] == [m.value for m in Mode]
    assert (options["on_existing"]["default"], options["mode"]["default"]) == ("upsert", "full")
    assert spec["if"]["properties"]["mode"] == {"const": "copy-only"}
    assert spec["then"]["properties"] == {
        "mapping": {"maxProperties": 0},
        "rules": {"maxItems": 0},
    }

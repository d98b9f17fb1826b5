"""Request validation of the API: strict, with messages that say why."""

from __future__ import annotations

import pytest
from aiohttp import web
from pydantic import ValidationError

from api.commands import ids_for, wait_seconds
from api.models import CreateMigrationIn

SPEC = {
    "source_connection": "legacy",
    "source_table": "customers",
    "source_key": "id",
    "target_connection": "warehouse",
    "target_table": "customers",
}


def test_a_minimal_spec_gets_defaults() -> None:
    spec = CreateMigrationIn.model_validate({"spec": SPEC}).spec.to_domain()

    assert (spec.batch_size, spec.parallelism, spec.min_score) == (1000, 1, 1.0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source_table": "x; DROP TABLE y"}, "spec.source_table"),
        ({"batch_size": 0}, "spec.batch_size"),
        ({"min_score": 1.5}, "spec.min_score"),
        ({"surprise": True}, "spec.surprise"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CreateMigrationIn.model_validate({"spec": {**SPEC, **change}})

    assert field in {".".join(map(str, e["loc"])) for e in caught.value.errors()}


def test_an_idempotency_key_fixes_the_ids() -> None:
    assert ids_for("k-1") == ids_for("k-1")
    assert ids_for("k-1") != ids_for("k-2")
    assert ids_for(None) != ids_for(None)


@pytest.mark.parametrize("raw", ["0", "-1", "61", "soon", "nan"])
def test_a_wait_timeout_out_of_range_is_a_400(raw: str) -> None:
    with pytest.raises(web.HTTPBadRequest, match="timeout must be"):
        wait_seconds(raw)


def test_a_wait_timeout_in_range_is_taken() -> None:
    assert (wait_seconds(None), wait_seconds("2.5"), wait_seconds("60")) == (10.0, 2.5, 60.0)

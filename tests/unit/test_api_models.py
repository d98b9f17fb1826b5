"""Request validation of the API: strict, with messages that say why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.commands import command_id_for, ids_for
from api.models import CreateMigrationIn
from tests.support.system import SPEC


def test_a_minimal_spec_gets_defaults() -> None:
    spec = CreateMigrationIn.model_validate({"spec": SPEC}).spec.to_domain()

    assert (spec.batch_size, spec.parallelism, spec.min_score) == (1000, 1, 1.0)
    assert (spec.on_existing, spec.mode) == ("upsert", "full")


def test_the_options_reach_the_domain_spec_as_given() -> None:
    body = {"spec": {**SPEC, "on_existing": "replace", "mode": "copy-only"}}

    spec = CreateMigrationIn.model_validate(body).spec.to_domain()

    assert (spec.on_existing, spec.mode) == ("replace", "copy-only")
    assert type(spec.on_existing) is str and type(spec.mode) is str


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source_table": "x; DROP TABLE y"}, "spec.source_table"),
        ({"batch_size": 0}, "spec.batch_size"),
        ({"min_score": 1.5}, "spec.min_score"),
        ({"surprise": True}, "spec.surprise"),
        ({"on_existing": "overwrite"}, "spec.on_existing"),
        ({"on_existing": None}, "spec.on_existing"),
        ({"mode": "fast"}, "spec.mode"),
        ({"mode": ["full"]}, "spec.mode"),
        ({"source_key": "id; DROP TABLE y"}, "spec.source_key"),
        ({"source_key": "tenant_id,, id"}, "spec.source_key"),
        ({"source_key": ["tenant_id", "id"]}, "spec.source_key"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CreateMigrationIn.model_validate({"spec": {**SPEC, **change}})

    assert field in {".".join(map(str, e["loc"])) for e in caught.value.errors()}


def test_a_composite_key_reaches_the_domain_spec_as_given() -> None:
    body = {"spec": {**SPEC, "source_key": "tenant_id, id"}}

    spec = CreateMigrationIn.model_validate(body).spec.to_domain()

    assert spec.source_key == "tenant_id, id"


def test_an_idempotency_key_fixes_the_ids() -> None:
    assert ids_for("k-1") == ids_for("k-1")
    assert ids_for("k-1") != ids_for("k-2")
    assert ids_for(None) != ids_for(None)


def test_an_idempotency_key_fixes_a_steering_command_per_migration_and_kind() -> None:
    assert command_id_for("k", "pause", "m-1") == command_id_for("k", "pause", "m-1")
    assert command_id_for("k", "pause", "m-1") != command_id_for("k", "pause", "m-2")
    assert command_id_for("k", "pause", "m-1") != command_id_for("k", "cancel", "m-1")
    assert command_id_for(None, "pause", "m-1") != command_id_for(None, "pause", "m-1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mapping": {"name": {"case": "title"}}}, "case must be 'upper' or 'lower'"),
        ({"rules": [{"rule": "range", "column": "age"}]}, "range needs min or max"),
        ({"rules": [{"rule": "sometimes", "column": "age"}]}, "rules[0].rule must be one of"),
        ({"on_existing": "merge"}, "on_existing must be one of ['replace', 'append', 'upsert']"),
        ({"mode": "copy_only"}, "mode must be one of ['full', 'copy-only'], not 'copy_only'"),
        ({"source_key": "id, tenant_id, id"}, "source_key names id more than once"),
        (
            {"mode": "copy-only", "mapping": {"full_name": "name"}},
            "mapping must be empty when mode is 'copy-only'",
        ),
        (
            {"mode": "copy-only", "rules": [{"rule": "not_null", "column": "email"}]},
            "rules must be empty when mode is 'copy-only'",
        ),
    ],
)
def test_the_mapping_rules_and_options_are_checked_by_the_domain(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        CreateMigrationIn.model_validate({"spec": {**SPEC, **change}})


def test_an_integer_may_be_written_with_a_zero_fraction() -> None:
    spec = CreateMigrationIn.model_validate({"spec": {**SPEC, "batch_size": 50.0}}).spec

    assert spec.batch_size == 50 and isinstance(spec.batch_size, int)
    with pytest.raises(ValidationError, match=r"spec\.batch_size"):
        CreateMigrationIn.model_validate({"spec": {**SPEC, "batch_size": 50.5}})

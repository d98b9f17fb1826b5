"""The one rule on what every store can hold (domain.text), and where it is
applied: the spec parser, the decoder of commands, results and tasks, the
API's JSON reader and the operator's dead-letter requests."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.bodies import MAX_DEPTH, depth, loads
from api.errors import BadRequest
from domain.errors import SpecError
from domain.spec import parse_spec_parts
from domain.text import refusal, storable, unstorable
from ops.dead_letters.requests import PurgeRequest, RedriveRequest
from schemas import RecordError, decode_command, decode_event, decode_result, encode
from streams.dataplane.runner import _failed
from tests.fixtures.samples import SAMPLES, decoder_for

NUL, SURROGATE = "\x00", "\udcff"


@given(st.text())
def test_text_is_refused_exactly_when_it_holds_a_nul_or_is_not_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    assert (refusal(text) is None) == (encodable and NUL not in text)


@given(st.floats())
def test_a_number_is_refused_exactly_when_it_is_not_finite(number: float) -> None:
    assert (unstorable({"n": [number]}) is None) == math.isfinite(number)


def test_the_first_refused_part_is_named_by_its_place() -> None:
    value = {"spec": {"mapping": {"email": {"default": "a" + NUL}}, "rules": [{}, {"k": 1.0}]}}
    found = unstorable(value)
    assert found is not None and found.where == "spec.mapping.email.default"
    assert "NUL" in found.why
    assert unstorable({"rules": [{"name": SURROGATE}]}).where == "rules[0].name"  # type: ignore[union-attr]
    assert unstorable({"k" + NUL: 1}).where == repr("k" + NUL)  # type: ignore[union-attr]
    assert unstorable({"ok": ["é", 1, None, True, 2.5]}) is None


def test_a_deep_value_is_walked_without_recursion() -> None:
    deep: Any = "x" + NUL
    for _ in range(5000):
        deep = [deep]
    assert unstorable(deep) is not None


SPEC_LITERALS = [
    ({"e": {"default": NUL}}, [], "mapping['e'].default"),
    ({"e": {"map": {"a": "b" + NUL}}}, [], "mapping['e'].map['a']"),
    ({"e": {"map": {"a" + NUL: "b"}}}, [], "mapping['e'].map"),
    ({"e": {"map": {"a": "b"}, "map_else": NUL}}, [], "mapping['e'].map_else"),
    ({"e": {"concat": ["a", "b"], "separator": NUL}}, [], "mapping['e'].separator"),
    ({"e": {"default": SURROGATE}}, [], "mapping['e'].default"),
    ({"e": {"default": math.inf}}, [], "mapping['e'].default"),
    ({}, [{"rule": "not_null", "column": "c", "name": "n" + NUL}], "rules[0].name"),
    ({}, [{"rule": "pattern", "column": "c", "pattern": "^a" + NUL}], "rules[0].pattern"),
    ({}, [{"rule": "allowed", "column": "c", "values": ["a", NUL]}], "rules[0].values"),
    ({}, [{"rule": "range", "column": "c", "min": "a" + NUL}], "rules[0].min"),
    ({"e" + SURROGATE: "a"}, [], "mapping key"),
]


@pytest.mark.parametrize(("mapping", "rules", "where"), SPEC_LITERALS)
def test_the_spec_parser_refuses_every_literal_no_store_can_hold(
    mapping: dict[str, Any], rules: list[dict[str, Any]], where: str
) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec_parts(mapping, rules)
    assert where in str(refused.value)


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


def _plain(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(encode(SAMPLES[name], "json")[0])
    return loaded


def test_a_command_or_result_holding_unstorable_text_is_a_record_error_naming_the_field() -> None:
    pause = {"type": "PauseMigration", "command_id": "c", "migration_id": "m", "reason": "a" + NUL}
    start = _plain("StartMigration")
    start["spec"]["mapping"] = {"email": {"default": "x" + NUL}}
    errored = _plain("PhaseErrored")
    errored["reason"] = SURROGATE
    with pytest.raises(RecordError, match=r"PauseMigration: reason: holds a NUL"):
        decode_command(_json(pause))
    with pytest.raises(RecordError, match=r"spec\.mapping\.email\.default"):
        decode_command(_json(start))
    with pytest.raises(RecordError, match=r"PhaseErrored: reason: .*surrogate"):
        decode_result(json.dumps(errored).encode("utf-8", "surrogatepass"))
    avro, headers = encode(replace(SAMPLES["CancelMigration"], reason=NUL))  # type: ignore[type-var]
    with pytest.raises(RecordError, match="CancelMigration: reason"):
        decode_command(avro, headers)
    task, headers = encode(replace(SAMPLES["RunPhase"], checkpoint="id>" + NUL))  # type: ignore[type-var]
    with pytest.raises(RecordError, match="RunPhase: checkpoint"):
        decoder_for("RunPhase")(task, headers)


def test_events_are_decoded_as_written_for_the_projector_to_judge() -> None:
    event = _plain("MigrationPausing")
    event["reason"] = "maint" + NUL + "enance"
    assert decode_event(_json(event)).reason == "maint\x00enance"  # type: ignore[union-attr]


def test_json_nesting_is_counted_without_recursion_and_bounded() -> None:
    assert depth(b'{"a": [1, {"b": "[[[{{"}]}') == 3
    deep = b"[" * 100_000 + b"]" * 100_000
    assert depth(deep) == 100_000
    assert depth(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) == MAX_DEPTH
    with pytest.raises(BadRequest, match="nests deeper"):
        loads(deep)
    with pytest.raises(BadRequest, match="nests deeper"):
        loads(b'{"a":' * 1000 + b"1" + b"}" * 1000)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"n": ' + b"9" * 5000 + b"}", "more than 40 digits"),
        (b'{"n": 1e999999}', "too large"),
        (b'{"n": NaN}', "not a JSON number"),
        (b'{"n": -Infinity}', "not a JSON number"),
        (b"\xff{", "malformed JSON"),
    ],
)
def test_json_numbers_are_bounded_while_parsing(raw: bytes, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        loads(raw)


@pytest.mark.parametrize(
    "body",
    [
        {"all": True, "rate": 1e-320},
        {"all": True, "rate": 1e308},
        {"offsets": ["0:99999999999999999999"]},
        {"offsets": ["²:1"]},
        {"offsets": ["0:1"], "all": True},
        {},
    ],
)
def test_a_redrive_out_of_bounds_is_refused_before_anything_is_read(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as refused:
        RedriveRequest.model_validate(body)
    assert "--" not in str(refused.value)


@pytest.mark.parametrize(
    "body",
    [
        {"before": ["0:9223372036854775808"]},
        {"before": ["2147483648:1"]},
        {},
        {"all": True, "before": ["0:1"]},
    ],
)
def test_a_purge_out_of_bounds_is_refused_before_anything_is_deleted(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as refused:
        PurgeRequest.model_validate(body)
    assert "--" not in str(refused.value)


def test_the_largest_positions_kafka_takes_are_accepted() -> None:
    purge = PurgeRequest.model_validate({"before": ["999999999:999999999999999999"]})
    assert purge.cut() == {999_999_999: 999_999_999_999_999_999}


@given(st.text())
def test_text_of_our_own_made_storable_keeps_the_rest_and_is_never_refused(text: str) -> None:
    made = storable(text)

    assert refusal(made) is None
    assert len(made) == len(text)
    if refusal(text) is None:
        assert made == text


def test_a_phase_failing_with_a_message_no_store_holds_still_reports_its_failure() -> None:
    task = SAMPLES["RunPhase"]
    failure = ValueError("invalid input: 'a" + NUL + "b' at " + SURROGATE)

    errored = _failed(task, failure)  # type: ignore[arg-type]
    value, headers = encode(errored)

    decoded = decode_result(value, headers)
    assert decoded.reason == "ValueError: invalid input: 'a\ufffdb' at \ufffd"  # type: ignore[union-attr]

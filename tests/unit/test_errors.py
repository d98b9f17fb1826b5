"""The one error tree: every class's place and flags are pinned, every
exception class of the product descends from the root, and the callers that
decide from the flags (the API's one mapping, the CLI's one catch) do."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest
import typer
from aiohttp.test_utils import make_mocked_request
from confluent_kafka import KafkaException
from typer.testing import CliRunner

from api.errors import AuthConfigError, BadRequest, InvalidBody, refusal
from cli.errors import Commands
from config.errors import UnknownConnection
from domain import errors as domain_errors
from domain.errors import ConfigurationError, MigratorError, NotFound, SpecError
from ops import errors as ops_errors
from ops.errors import BadSelection, NoSuchRecord, OperatorError, TraceUnavailable
from projections.exceptions import (
    OffsetConflict,
    ProjectionError,
    ReadModelUnreachable,
    RebuildError,
    RebuildStopped,
    RefoldError,
)
from schemas.exceptions import RecordError
from streams.dataplane import errors as phase_errors
from streams.dataplane.errors import (
    BreakerOpen,
    CaptureRefused,
    CutoverMismatch,
    Interrupted,
    PhaseError,
    ReconcileMismatch,
    SchemaDrifted,
    SnapshotLost,
    StatementCancelled,
    TransientError,
    ValidationFailed,
)
from streams.dataplane.keeping import Refused
from streams.kafka.errors import NoSuchTopic, ProduceQueueFull, TransactionAborted

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "schemas", "streams", "projections", "ops", "api", "cli", "config")

# class: (parents, retriable, status)
TREE: dict[type[BaseException], tuple[tuple[type, ...], bool, int]] = {
    MigratorError: ((Exception,), False, 500),
    ConfigurationError: ((MigratorError,), False, 500),
    UnknownConnection: ((ConfigurationError,), False, 500),
    AuthConfigError: ((ConfigurationError,), False, 500),
    BadRequest: ((MigratorError,), False, 400),
    InvalidBody: ((MigratorError,), False, 422),
    SpecError: ((MigratorError,), False, 422),
    NotFound: ((MigratorError,), False, 404),
    NoSuchTopic: ((NotFound,), False, 404),
    NoSuchRecord: ((NotFound,), False, 404),
    ProduceQueueFull: ((MigratorError, BufferError), True, 503),
    TransactionAborted: ((MigratorError, KafkaException), True, 503),
    RecordError: ((MigratorError,), False, 500),
    PhaseError: ((MigratorError,), False, 500),
    TransientError: ((PhaseError,), True, 503),
    BreakerOpen: ((TransientError,), True, 503),
    StatementCancelled: ((PhaseError,), False, 500),
    Interrupted: ((PhaseError,), False, 500),
    SnapshotLost: ((PhaseError,), False, 500),
    Refused: ((PhaseError,), False, 500),
    phase_errors.SpecError: ((PhaseError, SpecError), False, 422),
    ValidationFailed: ((PhaseError,), False, 500),
    ReconcileMismatch: ((PhaseError,), False, 500),
    CutoverMismatch: ((ReconcileMismatch,), False, 500),
    CaptureRefused: ((PhaseError,), False, 500),
    SchemaDrifted: ((PhaseError,), False, 500),
    ProjectionError: ((MigratorError,), False, 500),
    OffsetConflict: ((ProjectionError,), True, 409),
    ReadModelUnreachable: ((ProjectionError,), False, 500),
    RefoldError: ((ProjectionError,), False, 500),
    RebuildError: ((ProjectionError,), False, 500),
    RebuildStopped: ((RebuildError,), False, 500),
    OperatorError: ((MigratorError,), False, 422),
    BadSelection: ((OperatorError,), False, 422),
    TraceUnavailable: ((MigratorError,), True, 503),
}


@pytest.mark.parametrize("cls", TREE, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_each_class_has_its_place_and_flags(cls: type[MigratorError]) -> None:
    assert (cls.__bases__, cls.retriable, cls.status) == TREE[cls]


def test_the_module_docstring_draws_every_class_of_the_tree() -> None:
    drawn = domain_errors.__doc__ or ""
    assert [c.__name__ for c in TREE if c.__name__ not in drawn] == []


def test_ops_re_exports_the_kafka_edge_error() -> None:
    assert ops_errors.NoSuchTopic is NoSuchTopic


def _class_nodes() -> list[tuple[str, ast.ClassDef, bool]]:
    """(module, class, at module level of an importable module) for every class."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
                ".__init__"
            )
            tree = ast.parse(path.read_text())
            top = {id(n) for n in tree.body}
            importable = "__main__" not in path.name
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    found.append((module, node, importable and id(node) in top))
    return found


def _product_exceptions() -> set[type[BaseException]]:
    classes = set()
    for module, node, resolvable in _class_nodes():
        if not resolvable:
            bases = [ast.unparse(b) for b in node.bases]
            assert not any(b.endswith(("Error", "Exception")) for b in bases), (module, node.name)
            continue
        cls = getattr(importlib.import_module(module), node.name)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            classes.add(cls)
    return classes


def test_every_exception_class_of_the_product_descends_from_the_root_and_is_pinned() -> None:
    found = _product_exceptions()

    assert sorted(c.__qualname__ for c in found if not issubclass(c, MigratorError)) == []
    assert found == set(TREE)


def _answer(exc: MigratorError) -> tuple[int, dict[str, object]]:
    response = refusal(make_mocked_request("GET", "/api/v1/x"), exc)
    assert response.text is not None
    return response.status, json.loads(response.text)


@pytest.mark.parametrize("cls", [c for c in TREE if TREE[c][2] < 500], ids=lambda c: c.__name__)
def test_the_api_answers_a_client_error_with_its_status_and_message(
    cls: type[MigratorError],
) -> None:
    exc = NoSuchTopic("t") if cls is NoSuchTopic else cls("what is wrong")
    assert _answer(exc) == (cls.status, {"status": cls.status, "title": str(exc)})


def test_the_api_answers_an_error_of_ours_without_its_message() -> None:
    assert _answer(RecordError("secret detail")) == (
        500,
        {"status": 500, "title": "internal error"},
    )
    status, body = _answer(TransientError("database away", "target"))
    assert (status, body["title"], body["detail"]) == (503, "internal error", "try again shortly")


def test_the_cli_catches_the_root_once_and_exits_non_zero() -> None:
    app = typer.Typer(cls=Commands)

    @app.command()
    def refuse() -> None:
        raise BadSelection("'x' is not partition:offset (e.g. 0:42)")

    @app.command()
    def other() -> None:
        raise NoSuchTopic("nowhere")

    runner = CliRunner()
    refused, missing = runner.invoke(app, ["refuse"]), runner.invoke(app, ["other"])

    assert (refused.exit_code, "'x' is not partition:offset" in refused.stderr) == (1, True)
    assert (missing.exit_code, "topic 'nowhere' does not exist" in missing.stderr) == (1, True)

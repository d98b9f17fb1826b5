"""Records stay readable across schema versions, both ways.

- Golden records (tests/fixtures/records/<version>/) of every schema version
  decode to the records they were made from: a change that breaks old records
  fails here.
- schemas/history/ holds every writer schema ever used; a changed schema that
  is not archived, or a new field without a default, fails here.
- PhaseProgressed "v0" (tests/fixtures/schemas/, never published) lacks the
  `checkpoint` field: a new reader reads v0 records (the field takes its
  default) and a v0 reader reads new ones (the field is skipped).
- MigrationSpec before v3 lacks `on_existing` and `mode`: both ways too.
- Records before v5 lack the live migrations' fields (a spec's `cdc`, lag and
  position in progress, a cutover's options and result, an error's `kind`):
  they decode with the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest

from domain import CancelPhase, PhaseProgressed, StartMigration
from schemas import RecordError, decode_command, decode_result, encode
from schemas.registry import HISTORY_DIR, REGISTRY, SCHEMA_DIR, Registry, history_name, load
from tests.fixtures.samples import SAMPLES, SPEC, decoder_for

FIXTURES = Path(__file__).parents[1] / "fixtures"
GOLDEN = sorted((FIXTURES / "records").glob("*/*.*"))
V0_DIR = FIXTURES / "schemas"
FIX = "python -m schemas archive, then python -m tests.fixtures.make_golden <new version>"

BEFORE_OPTIONS = replace(SPEC, on_existing="upsert", mode="full", cdc=False)
BEFORE_LIVE = ("v1", "v2", "v3", "v4")  # golden versions made before the live fields
LIVE_DEFAULTS: dict[str, Any] = {
    "lag_bytes": None,
    "lag_seconds": None,
    "position": None,
    "cutover": None,
    "kind": None,
}


def before_live(record: Any) -> Any:
    """`record` as a writer before the live migrations' fields wrote it."""
    names = {f.name for f in dataclasses.fields(record)}
    changes = {name: value for name, value in LIVE_DEFAULTS.items() if name in names}
    if "spec" in names and record.spec is not None:
        changes["spec"] = replace(record.spec, cdc=False)
    return replace(record, **changes)


def before_options(name: str) -> Any:
    """The sample `name` as a writer before a spec's options wrote it."""
    sample: Any = SAMPLES[name]
    return replace(sample, spec=BEFORE_OPTIONS)


def before_assists(version: str, name: str) -> Any:
    """The task sample `name` as a writer of `version`, before tasks had `assist`, wrote it."""
    has_spec = name != "PausePhase"
    sample: Any = before_options(name) if version in ("v1", "v2") and has_spec else SAMPLES[name]
    return replace(sample, assist=False)


# A golden record whose expected value differs from today's sample (say, made
# before a field was added to the sample): (version, type) -> the record.
EXPECTED: dict[tuple[str, str], object] = {
    # v1 CancelPhase had no spec: it decodes with the field's default.
    ("v1", "CancelPhase"): CancelPhase(task_id="m-7f3a:12", migration_id="m-7f3a", run=1),
    # A spec before v3 had no options: it decodes with their defaults.
    **{
        (version, name): before_options(name)
        for version in ("v1", "v2")
        for name in ("StartMigration", "MigrationStarted", "RunPhase", "CancelPhase")
        if (version, name) != ("v1", "CancelPhase")
    },
    # A task before v4 had no `assist`: it decodes with the field's default.
    **{
        (version, name): before_assists(version, name)
        for version in ("v1", "v2", "v3")
        for name in ("RunPhase", "PausePhase", "CancelPhase")
        if (version, name) != ("v1", "CancelPhase")
    },
    # before v3 progress and completion counted no bytes and named no snapshot
    **{
        (version, name): dataclasses.replace(SAMPLES[name], bytes_done=0, snapshot=None)
        for version in ("v1", "v2")
        for name in ("PhaseProgressed", "PhaseProgressRecorded", "PhaseSucceeded", "PhaseCompleted")
    },
}

PROGRESS = PhaseProgressed(
    result_id="r-1",
    migration_id="m-1",
    phase="copy",
    run=1,
    rows_done=10,
    rows_total=100,
    checkpoint="id>10",
)
WITHOUT_CHECKPOINT = PhaseProgressed(
    result_id="r-1",
    migration_id="m-1",
    phase="copy",
    run=1,
    rows_done=10,
    rows_total=100,
    checkpoint=None,
)


@pytest.fixture(scope="module")
def old_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Today's schema folder, with PhaseProgressed as it was in v0."""
    folder = tmp_path_factory.mktemp("old-schemas")
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, folder)
    shutil.copy(V0_DIR / "PhaseProgressed.v0.avsc", folder / "PhaseProgressed.avsc")
    return folder


@pytest.fixture(scope="module")
def old(old_schemas: Path) -> Registry:
    """A v0 process that already knows the next version (staged rollout)."""
    return load(old_schemas, [HISTORY_DIR])


@pytest.fixture(scope="module")
def new() -> Registry:
    """Today's process, which knows v0 as a past version."""
    return load(SCHEMA_DIR, [HISTORY_DIR, V0_DIR])


# --- golden records --------------------------------------------------------------


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_golden_record_decodes_to_the_record_it_was_made_from(path: Path) -> None:
    version, name = path.parent.name, path.stem
    expected = EXPECTED.get((version, name), SAMPLES[name])
    if version in BEFORE_LIVE:
        expected = before_live(expected)

    assert decoder_for(name)(path.read_bytes(), None) == expected


@pytest.mark.parametrize("fmt", ["avro", "json"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_todays_encoding_of_every_record_type_has_golden_records(name: str, fmt: str) -> None:
    golden = {path.read_bytes() for path in GOLDEN if path.name == f"{name}.{fmt}"}

    assert encode(SAMPLES[name], fmt)[0] in golden, f"{name} changed: {FIX}"  # type: ignore[arg-type]


def test_there_are_golden_records_of_every_type_in_both_encodings() -> None:
    names = {(path.stem, path.suffix) for path in GOLDEN}

    assert names == {(name, suffix) for name in SAMPLES for suffix in (".avro", ".json")}


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_records_before_the_live_fields_read_them_as_their_defaults(fmt: str) -> None:
    v4 = FIXTURES / "records" / "v4"

    start = decode_command((v4 / f"StartMigration.{fmt}").read_bytes())
    errored = decode_result((v4 / f"PhaseErrored.{fmt}").read_bytes())
    progress = decode_result((v4 / f"PhaseProgressed.{fmt}").read_bytes())

    assert start.spec.cdc is False
    assert errored.kind is None
    assert (progress.lag_bytes, progress.lag_seconds, progress.position) == (None, None, None)


# --- the history of writer schemas -----------------------------------------------


def test_every_current_schema_is_archived() -> None:
    archived = {path.name for path in HISTORY_DIR.glob("*.avsc")}
    missing = [
        history_name(s) for s in REGISTRY.current.values() if history_name(s) not in archived
    ]

    assert not missing, f"not in schemas/history/: {missing}; run {FIX}"


@pytest.mark.parametrize("path", sorted(HISTORY_DIR.glob("*.avsc")), ids=lambda p: p.name)
def test_a_history_file_is_the_canonical_form_its_name_fingerprints(path: Path) -> None:
    schema = REGISTRY.writers[bytes.fromhex(path.name.split(".")[1])]

    assert path.name == history_name(schema)
    assert path.read_text().strip() == schema.canonical


@pytest.mark.parametrize("path", sorted(HISTORY_DIR.glob("*.avsc")), ids=lambda p: p.name)
def test_fields_added_since_an_archived_version_have_defaults(path: Path) -> None:
    archived = json.loads(path.read_text())
    name = archived["name"].rsplit(".", 1)[-1]
    current = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    known = {field["name"] for field in archived["fields"]}

    added = [f["name"] for f in current["fields"] if f["name"] not in known]
    assert all("default" in f for f in current["fields"] if f["name"] in added), added


# --- a new optional field, both ways ---------------------------------------------


def test_a_new_reader_reads_a_record_an_old_writer_wrote(old: Registry, new: Registry) -> None:
    value, headers = encode(PROGRESS, registry=old)  # v0 has no checkpoint to write

    assert value[2:10] == old.current["PhaseProgressed"].fingerprint
    assert value[2:10] != new.current["PhaseProgressed"].fingerprint
    assert decode_result(value, headers, registry=new) == WITHOUT_CHECKPOINT


def test_an_old_reader_reads_a_record_a_new_writer_wrote(old: Registry) -> None:
    value, headers = encode(PROGRESS)

    assert "checkpoint" not in {f.name for f in old.shapes["PhaseProgressed"].fields}
    assert decode_result(value, headers, registry=old) == WITHOUT_CHECKPOINT


def test_an_old_reader_that_never_learnt_the_new_schema_names_its_fingerprint(
    old_schemas: Path,
) -> None:
    unaware = load(old_schemas, [])
    value, headers = encode(PROGRESS)

    with pytest.raises(RecordError, match=value[2:10].hex()):
        decode_result(value, headers, registry=unaware)


def test_json_from_an_old_writer_takes_the_default_but_an_old_reader_rejects_new_fields(
    old: Registry, new: Registry
) -> None:
    old_json, _ = encode(PROGRESS, "json", registry=old)
    new_json, _ = encode(PROGRESS, "json")

    assert decode_result(old_json, registry=new) == WITHOUT_CHECKPOINT
    with pytest.raises(
        RecordError,
        match="unknown field\\(s\\) bytes_done, checkpoint, lag_bytes, lag_seconds, position,"
        " snapshot",
    ):
        decode_result(new_json, registry=old)  # JSON has no writer schema to resolve


def test_a_writer_schema_the_reader_cannot_resolve_is_a_record_error(tmp_path: Path) -> None:
    bad = json.loads((V0_DIR / "PhaseProgressed.v0.avsc").read_text())
    bad["fields"][3]["type"] = "string"  # run: long -> string is no promotion
    (tmp_path / "PhaseProgressed.avsc").write_text(json.dumps(bad))
    writer, reader = load(tmp_path, []), load(SCHEMA_DIR, [tmp_path])
    value, _ = encode(
        PhaseProgressed(
            result_id="r", migration_id="m", phase="copy", run="1", rows_done=1, rows_total=1
        ),
        registry=writer,
    )  # type: ignore[arg-type]

    with pytest.raises(RecordError, match="PhaseProgressed: cannot resolve writer schema"):
        decode_result(value, registry=reader)


# --- a spec's options, both ways ---------------------------------------------------

V2_SPEC_FINGERPRINT = "1e140632a01c8167"  # schemas/history/MigrationSpec.<this>.avsc
OPTIONS = ("on_existing", "mode")
LIVE = ("cdc",)  # added in v5, after the options


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A process of v2, before the options, that already knows v3 (staged rollout)."""
    folder = tmp_path_factory.mktemp("v2-schemas")
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, folder)
    spec = json.loads((SCHEMA_DIR / "MigrationSpec.avsc").read_text())
    spec["fields"] = [f for f in spec["fields"] if f["name"] not in OPTIONS + LIVE]
    (folder / "MigrationSpec.avsc").write_text(json.dumps(spec))
    return load(folder, [HISTORY_DIR])


def test_the_schema_before_the_options_is_the_archived_v2(v2: Registry) -> None:
    assert v2.current["MigrationSpec"].fingerprint.hex() == V2_SPEC_FINGERPRINT


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_a_spec_written_before_the_options_reads_with_their_defaults(
    v2: Registry, fmt: Literal["avro", "json"]
) -> None:
    decoded = decode_command(*encode(SAMPLES["StartMigration"], fmt, registry=v2))

    assert isinstance(decoded, StartMigration)
    assert decoded == before_options("StartMigration")
    assert (decoded.spec.on_existing, decoded.spec.mode) == ("upsert", "full")


def test_a_reader_before_the_options_reads_a_spec_with_them_without_them(v2: Registry) -> None:
    value, headers = encode(SAMPLES["StartMigration"])

    assert not set(OPTIONS) & v2.shapes["MigrationSpec"].names
    assert decode_command(value, headers, registry=v2) == before_options("StartMigration")

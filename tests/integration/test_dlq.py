"""Dead letters, operated through the CLI against the real broker: list, show,
redrive (exactly once, refusals) and purge."""

from __future__ import annotations

import json

import pytest

from config import KafkaNames, Settings
from streams.kafka.dead_letter_headers import REDRIVE_ATTEMPTS, REDRIVEN_FROM, header
from tests.support.dead_letters import (
    json_lines,
    migrator,
    records,
    write_dead_letters,
)

pytestmark = pytest.mark.integration

COMMAND = {"type": "ResumeMigration", "command_id": "c-1", "migration_id": "m-0"}


def test_list_shows_each_dead_letter_with_its_error_headers(
    settings: Settings, topics: KafkaNames
) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"not json", b"{}"])

    code, out, err = migrator(settings, "dlq", "list", topics.commands, "--json")

    assert code == 0, err
    rows = sorted(json_lines(out), key=lambda r: str(r["original_offset"]))
    assert [(r["key"], r["original_offset"], r["error_message"]) for r in rows] == [
        ("m-0", 0, "bad record 0"),
        ("m-1", 1, "bad record 1"),
    ]
    assert {(r["original_topic"], r["error_class"], r["attempts"]) for r in rows} == {
        (topics.commands, "builtins.ValueError", 1)
    }


def test_show_decodes_the_original_record(settings: Settings, topics: KafkaNames) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [json.dumps(COMMAND).encode()])
    (letter,) = records(settings, dlq)

    code, out, err = migrator(
        settings, "dlq", "show", dlq, str(letter.partition), str(letter.offset)
    )

    assert code == 0, err
    shown = json.loads(out)
    assert shown["value"]["command_id"] == "c-1"
    assert shown["headers"]["kafka_dlt-exception-message"] == "bad record 0"


def test_show_of_a_missing_record_says_so_and_exits_non_zero(
    settings: Settings, topics: KafkaNames
) -> None:
    code, _, err = migrator(settings, "dlq", "show", topics.commands, "0", "7")

    assert code == 1
    assert f"{topics.dlq(topics.commands)} partition 0 holds no records, not offset 7" in err


def test_an_unknown_topic_is_named(settings: Settings, topics: KafkaNames) -> None:
    code, _, err = migrator(settings, "dlq", "list", "no-such-topic")

    assert code == 1
    assert "'no-such-topic.dlq' does not exist" in err


def test_redrive_sends_every_record_back_once_with_key_value_and_headers(
    settings: Settings, topics: KafkaNames
) -> None:
    dlq = topics.dlq(topics.commands)
    values = [f"value-{i}".encode() for i in range(5)]
    write_dead_letters(settings, dlq, topics.commands, values, extra_headers=[("trace", b"t-1")])

    first = migrator(settings, "dlq", "redrive", topics.commands, "--all")
    again = migrator(settings, "dlq", "redrive", topics.commands, "--all")

    assert first[0] == 0 and json.loads(first[1])["redriven"] == 5
    assert again[0] == 0
    assert (json.loads(again[1])["redriven"], json.loads(again[1])["already_redriven"]) == (0, 5)
    back = records(settings, topics.commands)
    assert sorted((r.key, r.value) for r in back) == [
        (f"m-{i}".encode(), f"value-{i}".encode()) for i in range(5)
    ]
    for r in back:
        assert r.partition == int(r.key.decode()[2:]) % 3  # the original partition
        assert header(r.headers, "trace") == "t-1"
        assert header(r.headers, REDRIVE_ATTEMPTS) == "1"
        assert header(r.headers, REDRIVEN_FROM).startswith(f"{dlq}/")  # type: ignore[union-attr]
        assert not [k for k, _ in r.headers if k.startswith("kafka_dlt-")]


def test_a_dry_run_previews_and_sends_nothing(settings: Settings, topics: KafkaNames) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"a", b"b", b"c"])

    code, out, _ = migrator(settings, "dlq", "redrive", dlq, "--all", "--dry-run", "--limit", "2")

    preview = json.loads(out)
    assert (code, preview["to_redrive"], len(preview["sample"])) == (0, 2, 2)
    assert records(settings, topics.commands) == []


def test_redrive_of_chosen_offsets_only(settings: Settings, topics: KafkaNames) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"a", b"b", b"c"])
    chosen = records(settings, dlq)[0]

    code, out, _ = migrator(
        settings, "dlq", "redrive", dlq, "--offset", f"{chosen.partition}:{chosen.offset}"
    )

    assert (code, json.loads(out)["redriven"]) == (0, 1)
    assert [r.value for r in records(settings, topics.commands)] == [chosen.value]


def test_a_missing_offset_is_an_error_and_nothing_is_sent(
    settings: Settings, topics: KafkaNames
) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"a"])
    (there,) = records(settings, dlq)

    code, _, err = migrator(
        settings, "dlq", "redrive", dlq, "--offset", f"{there.partition}:{there.offset}",
        "--offset", "2:99",
    )  # fmt: skip

    assert code == 1
    assert f"no dead letter at 2:99 of {dlq}" in err
    assert records(settings, topics.commands) == []


def test_a_record_that_failed_max_attempts_times_is_refused(
    settings: Settings, topics: KafkaNames
) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"tired"], attempts=3)
    (tired,) = records(settings, dlq)
    at = f"{tired.partition}:{tired.offset}"

    chosen = migrator(settings, "dlq", "redrive", dlq, "--offset", at, "--max-attempts", "3")
    every = migrator(settings, "dlq", "redrive", dlq, "--all", "--max-attempts", "3")

    assert chosen[0] == 1
    assert "has failed 3 times (max attempts 3)" in chosen[2]
    assert every[0] == 0 and json.loads(every[1])["refused_max_attempts"] == 1
    assert records(settings, topics.commands) == []


def test_purge_needs_yes_then_deletes(settings: Settings, topics: KafkaNames) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"a", b"b", b"c", b"d"])

    unconfirmed = migrator(settings, "dlq", "purge", dlq, "--all")
    kept = len(records(settings, dlq))
    confirmed = migrator(settings, "dlq", "purge", dlq, "--all", "--yes")

    assert unconfirmed[0] == 1 and "add --yes" in unconfirmed[2] and kept == 4
    assert confirmed[0] == 0 and json.loads(confirmed[1])["deleted"] == 4
    assert records(settings, dlq) == []


def test_purge_before_an_offset_keeps_the_rest(settings: Settings, topics: KafkaNames) -> None:
    dlq = topics.dlq(topics.commands)
    write_dead_letters(settings, dlq, topics.commands, [b"a", b"b", b"c", b"d", b"e", b"f"])
    first = records(settings, dlq)[0]

    code, out, _ = migrator(
        settings, "dlq", "purge", dlq, "--before", f"{first.partition}:{first.offset + 1}", "--yes"
    )

    assert (code, json.loads(out)["deleted"]) == (0, 1)
    assert first not in records(settings, dlq) and len(records(settings, dlq)) == 5

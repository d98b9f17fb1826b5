"""Park the migration, never the read model, against the real broker and
database: gapped, forked and unstorable migrations (their logs written
straight to the events topic, in a Kafka transaction) are quarantined, in the
batch's own transaction, while every other migration projects fully; the API
lists and shows them; `migrator projection refold` lifts a quarantine once the
log allows it and keeps one it does not; a rebuild quarantines the same way
instead of failing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from config import KafkaNames, Settings
from domain import Event, replay
from projections.quarantine import escaped_event
from projections.rebuild import Rebuild
from tests.support.event_log import (
    interleaved,
    paused_then_resumed,
    projecting,
    rows,
    scalar,
    snapshot,
    until,
    write_log,
)
from tests.support.processes import ROOT, process_env
from tests.support.read_side import VIEWER, call, lifecycle, serving, with_tokens

pytestmark = pytest.mark.integration
NUL_REASON = "maint\x00enance"
QUARANTINED = "SELECT count(*) FROM migrations WHERE quarantine_reason IS NOT NULL"
CONSUMED = "SELECT sum(next_offset) FROM projection_offsets"
STORED = "SELECT count(*) FROM migration_events"


def healthy(count: int) -> list[list[Event]]:
    return [lifecycle(f"m-ok-{i:02d}") for i in range(count)]


def gapped(mid: str) -> list[Event]:
    """Events 4 and 5 missing: quarantined at 6, events 1..3 stored."""
    history = lifecycle(mid)
    return [*history[:3], *history[5:]]


def forked(mid: str) -> list[Event]:
    """Sequence 3 seen again, with other content, after 4: events 1..4 stored."""
    history = lifecycle(mid)
    return [*history[:4], replace(history[2], causation_id="c-someone-else"), *history[4:]]


def with_a_nul(mid: str) -> list[Event]:
    """Paused with a NUL in its reason (event 3, refused by jsonb): events 1..2 stored."""
    before, after = paused_then_resumed(mid, NUL_REASON)
    return before + after


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def gauge_reads(expected: float) -> None:
    async with asyncio.timeout(30):
        while True:
            if sample("migrator_projection_quarantined") == expected:
                return
            await asyncio.sleep(0.1)


def by_id(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["migration_id"]: r for r in found}


async def test_gapped_and_forked_migrations_are_quarantined_while_the_others_project_fully(
    settings: Settings, topics: KafkaNames
) -> None:
    # given: a log where a gapped and a forked migration interleave with healthy ones
    ok = healthy(12)
    log = interleaved([*ok, gapped("m-gap"), forked("m-fork")])
    await asyncio.to_thread(write_log, settings, topics, log)
    held_before = sample("migrator_projection_held_total")
    api = with_tokens(settings)

    # when
    async with projecting(settings) as projector:
        await until(settings, CONSUMED, len(log), projector)
        await gauge_reads(2)
        async with serving(api) as url, aiohttp.ClientSession() as session:
            listed = await call(session, "GET", f"{url}/api/v1/migrations?quarantined=true", VIEWER)
            others = await call(
                session, "GET", f"{url}/api/v1/migrations?quarantined=false&limit=500", VIEWER
            )
            one = await call(session, "GET", f"{url}/api/v1/migrations/m-gap", VIEWER)

    # then: every healthy migration is whole, the two bad ones stop before their bad event
    found = by_id(await rows(settings, "SELECT * FROM migrations"))
    for history in ok:
        row, expected = found[history[0].migration_id], replay(history[0].migration_id, history)
        assert (row["version"], row["status"]) == (expected.version, expected.status.value)
        assert row["quarantine_reason"] is None
    gap, fork = found["m-gap"], found["m-fork"]
    assert (gap["version"], gap["quarantine_sequence"]) == (3, 6)
    assert gap["quarantine_reason"] == "gap: expected sequence 4, got 6"
    assert (fork["version"], fork["quarantine_sequence"]) == (4, 3)
    assert fork["quarantine_reason"] == "fork: sequence 3 seen twice with different events"
    assert gap["quarantined_at"] is not None and fork["quarantined_at"] is not None
    assert await scalar(settings, STORED) == sum(len(h) for h in ok) + 3 + 4
    causes = await rows(
        settings, "SELECT causation_id FROM migration_events WHERE migration_id = 'm-fork'"
    )
    assert "c-someone-else" not in {c["causation_id"] for c in causes}  # the fork is not merged
    held = len(gapped("m-gap")) - 3 + len(forked("m-fork")) - 4
    assert sample("migrator_projection_held_total") - held_before == held
    # and the API lists them, shows why, and lists the others apart
    assert listed[0] == 200 and {m["migration_id"] for m in listed[1]["migrations"]} == {
        "m-gap",
        "m-fork",
    }
    assert one[0] == 200
    assert {k: v for k, v in one[1]["quarantine"].items() if k != "since"} == {
        "reason": "gap: expected sequence 4, got 6",
        "at_sequence": 6,
    }
    assert len(others[1]["migrations"]) == len(ok)
    assert all(m["quarantine"] is None for m in others[1]["migrations"])


async def test_an_event_id_another_migration_holds_quarantines_only_one_of_them(
    settings: Settings, topics: KafkaNames
) -> None:
    # given: two migrations whose first events carry the same event id
    one, two = lifecycle("m-one"), lifecycle("m-two")
    two = [replace(two[0], event_id=one[0].event_id), *two[1:]]
    log = interleaved([one, two, *healthy(3)])
    await asyncio.to_thread(write_log, settings, topics, log)

    # when
    async with projecting(settings) as projector:
        await until(settings, CONSUMED, len(log), projector)

    # then: the database refuses the second one (event ids are unique), and only it
    found = by_id(await rows(settings, "SELECT * FROM migrations"))
    held = [m for m in ("m-one", "m-two") if found[m]["quarantine_reason"] is not None]
    assert len(held) == 1, found
    reason = found[held[0]]["quarantine_reason"]
    assert reason.startswith("unstorable event 1: duplicate key value violates unique constraint")
    assert found[held[0]]["version"] == 0
    kept = "m-two" if held == ["m-one"] else "m-one"
    assert (found[kept]["status"], found[kept]["quarantine_reason"]) == ("COMPLETED", None)
    assert await scalar(settings, QUARANTINED) == 1


def refold_cli(settings: Settings, migration_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "projection", "refold", migration_id],
        cwd=ROOT,
        env=process_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_a_refold_lifts_a_quarantine_the_log_allows_and_keeps_one_it_does_not(
    settings: Settings, topics: KafkaNames
) -> None:
    # given: a migration quarantined by a NUL it cannot store, one by a gap
    before, after = paused_then_resumed("m-nul", NUL_REASON)
    log = interleaved([before, gapped("m-gap"), *healthy(3)])
    await asyncio.to_thread(write_log, settings, topics, log)
    async with projecting(settings) as projector:
        await until(settings, CONSUMED, len(log), projector)
        parked = by_id(await rows(settings, "SELECT * FROM migrations"))["m-nul"]

        # when: the operator refolds both, and the first one's later events come
        lifted = await asyncio.to_thread(refold_cli, settings, "m-nul")
        kept = await asyncio.to_thread(refold_cli, settings, "m-gap")
        unknown = await asyncio.to_thread(refold_cli, settings, "m-nowhere")
        refolded = by_id(await rows(settings, "SELECT * FROM migrations"))["m-nul"]
        await asyncio.to_thread(write_log, settings, topics, after)
        version = "SELECT version FROM migrations WHERE migration_id = 'm-nul'"
        await until(settings, version, len(before) + len(after), projector)
        await gauge_reads(1)

    # then: it was quarantined at the NUL, with the database's own words
    assert (parked["version"], parked["quarantine_sequence"]) == (2, 3)
    assert parked["quarantine_reason"].startswith("unstorable event 3: ")
    # the refold stored it with the NUL escaped, said so, and lifted the quarantine
    assert lifted.returncode == 0, lifted.stderr
    assert json.loads(lifted.stdout) | {"partition": 0} == {
        "migration_id": "m-nul",
        "partition": 0,
        "events": len(before),
        "version": len(before),
        "quarantine": None,
        "lifted": True,
        "escaped_sequences": [3],
    }
    assert (refolded["status"], refolded["reason"]) == ("PAUSED", "maint\\u0000enance")
    assert (refolded["quarantine_reason"], refolded["escaped_sequences"]) == (None, [3])
    # and the projector went on with its later events, onto the refolded row
    row = by_id(await rows(settings, "SELECT * FROM migrations"))["m-nul"]
    expected = replay("m-nul", [escaped_event(e) or e for e in before + after])
    assert (row["status"], row["version"]) == (expected.status.value, expected.version)
    payload = "SELECT payload FROM migration_events WHERE migration_id = 'm-nul' AND sequence = 3"
    assert (await scalar(settings, payload))["reason"] == "maint\\u0000enance"
    # a gap the log still has stays quarantined, with its reason, and exits 3
    assert kept.returncode == 3, kept.stderr
    assert json.loads(kept.stdout)["quarantine"] == {
        "reason": "gap: expected sequence 4, got 6",
        "at_sequence": 6,
    }
    assert "still quarantined: gap: expected sequence 4, got 6" in kept.stderr
    # a migration the log does not have is named, and nothing changes
    assert unknown.returncode == 1
    assert "no event of migration 'm-nowhere'" in unknown.stderr
    assert await scalar(settings, QUARANTINED) == 1


async def test_a_rebuild_quarantines_the_same_migrations_the_same_way_instead_of_failing(
    settings: Settings, topics: KafkaNames
) -> None:
    # given: a read model projected from a log with a gap, a fork and a NUL in it
    log = interleaved([*healthy(10), gapped("m-gap"), forked("m-fork"), with_a_nul("m-nul")])
    await asyncio.to_thread(write_log, settings, topics, log)
    async with projecting(settings) as projector:
        await until(settings, CONSUMED, len(log), projector)
        live = await snapshot(settings)

        # when
        outcome = await Rebuild(settings, uuid.uuid4().hex[:8]).run()

    # then: the rebuilt read model is the live one, quarantines and all
    assert outcome.events == sum(len(h) for h in healthy(10)) + 3 + 4 + 2
    assert await snapshot(settings) == live
    reasons = {
        r["migration_id"]: r["quarantine_reason"]
        for r in await rows(settings, "SELECT * FROM migrations WHERE quarantine_reason > ''")
    }
    assert reasons.keys() == {"m-gap", "m-fork", "m-nul"}
    assert reasons["m-nul"].startswith("unstorable event 3: ")

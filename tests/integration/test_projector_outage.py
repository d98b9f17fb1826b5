"""The projector while its read-model database restarts, for real: on a
PostgreSQL cluster of the test's own, stopped at once (`pg_ctl -m immediate`)
under a running projector while events keep coming, and started again a few
seconds later. The projector does not exit: it reconnects with backoff,
resumes from its stored offsets, logs the outage once (not once per try), and
its read model then equals a fresh fold of the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from config import KafkaNames, Settings
from tests.support.event_log import interleaved, projecting, snapshot, until, write_log
from tests.support.pg_cluster import Cluster
from tests.support.read_side import lifecycle

pytestmark = pytest.mark.integration
STORED = "SELECT count(*) FROM migration_events"
OUTAGE_SECONDS = 5  # how long the database stays down: the fault, not a bound checked


@pytest.fixture
def cluster(crashable: Cluster, unique: str) -> Iterator[tuple[Cluster, str]]:
    """The shared crashable cluster, and a read-model database of this test's in it."""
    with crashable.database(f"read_{unique}") as url:
        yield crashable, url


async def test_a_database_restart_under_a_running_projector_is_ridden_out(
    cluster: tuple[Cluster, str],
    settings: Settings,
    topics: KafkaNames,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given: a projector into the cluster's database, up to date
    crashable, url = cluster
    own = settings.replace(database={"url": SecretStr(url)})
    first = interleaved([lifecycle(f"m-{i:02d}") for i in range(20)])
    later = interleaved([lifecycle(f"m-{i:02d}") for i in range(20, 40)])
    await asyncio.to_thread(write_log, own, topics, first)
    caplog.set_level(logging.WARNING, logger="projections.projector")
    async with projecting(own) as projector:
        await until(own, STORED, len(first), projector)

        # when: the database dies at once, events come meanwhile, and it is back later
        await asyncio.to_thread(crashable.kill)
        await asyncio.to_thread(write_log, own, topics, later)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(crashable.start)

        # then: the projector goes on by itself, from its stored offsets
        await until(own, STORED, len(first) + len(later), projector)
        assert not projector.done()
        rebuilt = await snapshot(own)

    said = [r.getMessage() for r in caplog.records if r.name == "projections.projector"]
    assert len([s for s in said if s.startswith("read model database lost")]) == 1, said
    assert len([s for s in said if s.startswith("read model database back")]) == 1, said
    # and its read model is a fresh fold of the log: a new projector, from offset 0
    fresh = settings.replace(kafka={"app_id": settings.kafka.app_id + "-fresh"})
    async with projecting(fresh) as projector:
        await until(fresh, STORED, len(first) + len(later), projector)
    assert rebuilt == await snapshot(fresh)

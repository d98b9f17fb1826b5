"""The half-open breaker's one trial always ends (DESIGN.md section 10): a
trial whose block meets this connection's own breaker held shut — a call
nested inside it, such as a chunk's source figures awaited inside the
chunk's copy — hands the trial back, so the next call tries the database
again. A trial left out would hold every later call back for good (a source
crashed for 8 s once kept a phase retrying past its timeout)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from config import Settings
from streams.dataplane.breaker import BreakerState
from streams.dataplane.database import Database
from streams.dataplane.errors import BreakerOpen
from tests.support.tables import connection_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def legacy(database_url: str) -> AsyncIterator[Database]:
    settings = Settings(phase={"breaker_failure_threshold": 1, "breaker_reset_seconds": 0.05})
    db = Database("legacy", connection_for(database_url), settings)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def half_open(db: Database) -> None:
    db.breaker.failure()  # the threshold is one failure
    assert db.breaker.state is BreakerState.OPEN
    db.breaker.opened_at -= 1.0  # the reset time has passed
    assert db.breaker.state is BreakerState.HALF_OPEN


async def test_a_trial_that_meets_its_own_breaker_shut_hands_the_trial_back(
    legacy: Database,
) -> None:
    await half_open(legacy)

    with pytest.raises(BreakerOpen):
        # the outer block is the trial; the inner is held back, as the trial is out
        async with legacy.connection(), legacy.connection():
            pass

    assert legacy.breaker.allow(), "the trial was never handed back"


async def test_a_trial_that_succeeds_closes_the_breaker(legacy: Database) -> None:
    await half_open(legacy)

    async with legacy.connection() as conn:
        await conn.execute("SELECT 1")

    assert legacy.breaker.state is BreakerState.CLOSED

"""Fixtures of the data plane's integration tests: a target database, and
the two named databases (`legacy`, `warehouse`) a phase runs between. A
module defines `source_url` (its source tables) and may override either."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from streams.dataplane.database import Databases
from tests.support.phases import legacy_and_warehouse
from tests.support.stack import Stack
from tests.support.tables import fresh_database


@pytest.fixture
def target_url(stack: Stack, unique: str) -> Iterator[str]:
    """An empty target database."""
    with fresh_database(stack.database_url, f"tgt_{unique}") as url:
        yield url


@pytest.fixture
async def databases(source_url: str, target_url: str) -> AsyncIterator[Databases]:
    async with legacy_and_warehouse(source_url, target_url) as found:
        yield found

"""Fixtures shared by the integration, end-to-end and chaos tests.

The stack (Kafka + PostgreSQL) starts once per session, and only when a test
needs it; each test gets a fresh topic prefix, app id and database.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cli.topics import create_topics
from config import KafkaNames, Settings
from tests.support.pg_cluster import Cluster, own_cluster
from tests.support.stack import Stack, drop_database, free_port, session_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with session_stack() as found:
        yield found
        # Kafka clients a test left in a reference cycle go now, while the
        # broker is still there: otherwise they log "Connect refused" until exit.
        gc.collect()


@pytest.fixture(scope="session")
def crashable() -> Iterator[Cluster]:
    """A PostgreSQL cluster the tests may crash and bring back, shared by the
    tests that do (each in a database of its own); started on first use."""
    with own_cluster() as found:
        yield found


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def database_url(stack: Stack, unique: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t_{unique}"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(stack.database_url, dbname=name)
    drop_database(stack.database_url, name)


@pytest.fixture
def settings(stack: Stack, database_url: str, unique: str) -> Settings:
    """Settings of one test: its own topics, app id, database and API port."""
    return Settings(
        kafka={
            "bootstrap_servers": stack.kafka_bootstrap,
            "topic_prefix": f"t{unique}.",
            "app_id": f"app-{unique}",
            "topic_partitions": 3,
        },
        database={"url": database_url},
        api={"port": free_port()},
    )


@pytest.fixture
def names(settings: Settings) -> KafkaNames:
    return KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)


@pytest.fixture
def topics(settings: Settings, names: KafkaNames) -> KafkaNames:
    """The test's topics, created."""
    create_topics(settings)
    return names


def dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])

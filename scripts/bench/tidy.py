"""The end of a benchmark run on the shared stack: its database dropped and its
topics deleted, patiently; what cannot be cleaned up is said, never raised,
so that it cannot cost the figures (printed before)."""

from __future__ import annotations

import psycopg
from confluent_kafka.admin import AdminClient

from config import KafkaNames, Settings
from tests.support.stack import drop_database


def tidy(admin_url: str, database: str, settings: Settings) -> list[str]:
    """Drop `database` and delete the run's topics; return what was left behind."""
    left: list[str] = []
    try:
        drop_patiently(admin_url, database)
    except Exception as exc:  # the figures matter more than the cleanup
        left.append(
            f"database {database} not dropped ({type(exc).__name__}: {exc});"
            f' drop it by hand: DROP DATABASE "{database}" WITH (FORCE)'
        )
    try:
        delete_topics(settings)
    except Exception as exc:
        left.append(f"the run's topics ({settings.kafka.topic_prefix}*) not all deleted: {exc}")
    return left


def drop_patiently(admin_url: str, name: str, tries: int = 6) -> None:
    """drop_database waits ~20 s for an autovacuum worker to leave; a vacuum
    of a large table can take longer."""
    for attempt in range(tries):
        try:
            drop_database(admin_url, name)
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == tries - 1:
                raise


def delete_topics(settings: Settings) -> None:
    """The run's own topics (its prefix and app id), on a shared broker."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    names = KafkaNames(app_id=settings.kafka.app_id, prefix=settings.kafka.topic_prefix)
    ours = {t.name for t in names.topic_specs(settings.kafka.topic_partitions)}
    there = ours & set(admin.list_topics(timeout=30).topics)
    if there:
        for future in admin.delete_topics(sorted(there), operation_timeout=30).values():
            future.result()

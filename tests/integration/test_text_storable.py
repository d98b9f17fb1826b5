"""The rule of domain.text against the real PostgreSQL: whatever text it
accepts, `text` and `jsonb` store; whatever it refuses, they refuse too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.text import refusal
from tests.support.stack import Stack

pytestmark = pytest.mark.integration
# Arbitrary unicode, NUL and lone surrogates included, and some of each on purpose.
TEXTS = st.text(max_size=20) | st.builds(
    lambda a, b, c: a + c + b,
    st.text(max_size=5),
    st.text(max_size=5),
    st.sampled_from("\x00\ud800\udfff"),
)


def _stores(conn: psycopg.Connection[tuple[object, ...]], text: str) -> bool:
    """Both a text column and a jsonb value take `text` (and give it back)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT %s::text, (%s::jsonb)->>'t'", (text, json.dumps({"t": text}))
            ).fetchone()
    except (psycopg.DataError, UnicodeEncodeError):
        return False
    assert row == (text, text)
    return True


@pytest.fixture(scope="module")
def conn(stack: Stack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(stack.database_url, autocommit=True) as connection:
        yield connection


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(TEXTS)
def test_postgresql_stores_exactly_the_text_the_rule_accepts(
    conn: psycopg.Connection[tuple[object, ...]], text: str
) -> None:
    assert _stores(conn, text) == (refusal(text) is None), repr(text)

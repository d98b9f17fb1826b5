"""Tokens, roles and rate limits: pure, no I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.app import api_database_url, create_app
from api.auth import Role, load_tokens
from api.errors import AuthConfigError
from api.ratelimit import RateLimiter, retry_after
from config import Settings

OPERATOR, VIEWER = "o" * 20, "v" * 20


def settings(**fields: object) -> Settings:
    return Settings(**fields)  # type: ignore[arg-type]


def test_tokens_map_to_their_roles_and_unknown_ones_to_none() -> None:
    tokens = load_tokens(
        settings(api={"tokens": SecretStr(json.dumps({OPERATOR: "operator", VIEWER: "viewer"}))})
    )

    assert tokens.role_of(OPERATOR) is Role.OPERATOR
    assert tokens.role_of(VIEWER) is Role.VIEWER
    assert tokens.role_of("w" * 20) is None and tokens.role_of(None) is None
    assert Role.OPERATOR > Role.VIEWER


def test_tokens_can_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({VIEWER: "viewer"}))

    assert load_tokens(settings(api={"tokens_file": path})).role_of(VIEWER) is Role.VIEWER


def test_without_tokens_the_api_refuses_to_start_unless_told_it_is_open() -> None:
    with pytest.raises(AuthConfigError, match="no API tokens configured"):
        create_app(settings())

    assert load_tokens(settings(api={"auth": "none"})).required is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{nope", "not JSON"),
        ('["a"]', "JSON object of token"),
        (json.dumps({"short": "viewer"}), "shorter than 16"),
        (json.dumps({OPERATOR: "admin"}), "must be 'viewer' or 'operator'"),
    ],
)
def test_bad_token_configuration_says_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(AuthConfigError, match=message):
        load_tokens(settings(api={"tokens": SecretStr(raw)}))


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])

    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # another client has its own bucket
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    assert retry_after(0.2) == "1" and retry_after(2.1) == "3"


def test_the_api_logs_in_as_its_own_role_without_the_owners_password() -> None:
    derived = api_database_url(settings(database={"url": "postgresql://owner:secret@db:5432/rm"}))
    given = api_database_url(settings(api={"database_url": "postgresql://reader:pw@replica/rm"}))

    assert "user=migrator_api" in derived and "secret" not in derived
    assert "dbname=rm" in derived and "host=db" in derived
    assert given == "postgresql://reader:pw@replica/rm"

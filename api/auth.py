"""Bearer tokens and roles.

Tokens come from configuration (`API_TOKENS` as JSON, or `API_TOKENS_FILE`),
never from code: `{"<token>": "viewer" | "operator"}`. A viewer may query and
watch; an operator may also send commands. With no token configured the API
refuses to start, unless `API_AUTH=none` says explicitly that it is open.
Tokens are compared by their SHA-256 digests in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum

from aiohttp import web

from api.errors import AuthConfigError
from config import Settings

WS_PROTOCOL = "migrator.v1"
WS_BEARER_PREFIX = "bearer."  # a browser sends its token as a subprotocol: bearer.<base64url>

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Role(IntEnum):
    """Ordered: a higher role may do all that a lower one may."""

    VIEWER = 1
    OPERATOR = 2


@dataclass(frozen=True)
class Tokens:
    by_digest: dict[bytes, Role]
    required: bool = True

    def role_of(self, token: str | None) -> Role | None:
        if token is None:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for known, role in self.by_digest.items():
            if hmac.compare_digest(known, digest):
                found = role
        return found


def load_tokens(settings: Settings) -> Tokens:
    """The configured tokens; AuthConfigError says what is wrong with them."""
    raw: dict[str, object] = {}
    if settings.api.tokens_file is not None:
        raw.update(_parse(settings.api.tokens_file.read_text(), str(settings.api.tokens_file)))
    if settings.api.tokens is not None:
        raw.update(_parse(settings.api.tokens.get_secret_value(), "API_TOKENS"))
    tokens = {hashlib.sha256(t.encode()).digest(): _role(r) for t, r in raw.items()}
    if settings.api.auth == "none":
        return Tokens(tokens, required=False)
    if not tokens:
        raise AuthConfigError(
            "no API tokens configured: set API_TOKENS (JSON {token: role}) or API_TOKENS_FILE,"
            " or API_AUTH=none to serve without authentication"
        )
    return Tokens(tokens)


def _parse(text: str, where: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuthConfigError(f"{where} is not JSON: {exc.msg}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise AuthConfigError(f"{where} must be a JSON object of token -> role")
    short = [k for k in value if len(k) < 16]
    if short:
        raise AuthConfigError(f"{where}: {len(short)} token(s) shorter than 16 characters")
    return value


def _role(name: object) -> Role:
    if name not in ("viewer", "operator"):
        raise AuthConfigError(f"a token's role must be 'viewer' or 'operator', not {name!r}")
    return Role.OPERATOR if name == "operator" else Role.VIEWER


def presented_token(request: web.Request) -> str | None:
    """The bearer token of the Authorization header, or of a WebSocket subprotocol."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(WS_BEARER_PREFIX):
            return _b64(proto.removeprefix(WS_BEARER_PREFIX))
    return None


def _b64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def requires(role: Role | None) -> Callable[[Handler], Handler]:
    """Mark a handler with the least role it needs (None: open to anyone)."""

    def mark(handler: Handler) -> Handler:
        handler.required_role = role  # type: ignore[attr-defined]
        return handler

    return mark


def required_role(request: web.Request) -> Role | None:
    """What the matched route needs; a route not marked needs a viewer."""
    return getattr(request.match_info.handler, "required_role", Role.VIEWER)

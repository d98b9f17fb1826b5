"""The secrets a process knows, kept out of everything it logs: a second line
of defence behind the code paths that already never log them (a library that
echoes a header line, a traceback that quotes a DSN)."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

from config.settings import Settings

MASK = "[redacted]"
SHORTEST = 4  # a shorter "secret" would mask ordinary words


def secrets_of(settings: Settings) -> list[str]:
    """Every secret the settings hold, in the forms it may travel in, longest first."""
    found = {form for secret in _secrets(settings) for form in _forms(secret)}
    return sorted((s for s in found if len(s) >= SHORTEST), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _secrets(settings: Settings) -> Iterator[str]:
    api = settings.api
    yield from _tokens(api.tokens.get_secret_value() if api.tokens else None)
    if api.tokens_file is not None:
        with contextlib.suppress(OSError):
            yield from _tokens(api.tokens_file.read_text())
    if api.token is not None:
        yield api.token.get_secret_value()
    for url in (settings.database.url, api.database_url):
        if url is not None:
            yield from _password_in(url.get_secret_value())
    for connection in settings.phase.connections.values():
        with contextlib.suppress(OSError):
            if (secret := connection.secret()) is not None:
                yield secret


def _tokens(text: str | None) -> Iterator[str]:
    """The bearer tokens of the API's token JSON ({"<token>": role})."""
    with contextlib.suppress(ValueError, AttributeError):
        yield from (str(token) for token in json.loads(text or "{}"))


def _password_in(url: str) -> Iterator[str]:
    with contextlib.suppress(Exception):  # a malformed URL is the settings' to refuse
        if password := conninfo_to_dict(url).get("password"):
            yield str(password)


def _forms(secret: str) -> Iterator[str]:
    """The secret as written, URL-quoted, and base64 (the WebSocket
    subprotocol `bearer.<base64url>`), padded and not."""
    yield secret
    yield quote(secret, safe="")
    raw = secret.encode()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        yield text
        yield text.rstrip("=")

"""Bounds on live clients (WebSockets and long polls) held at once: `limit`
in all, `per_client` for one client (its token, else its address), and the
last `reserve` of them for operators, so neither one token nor all the
viewers together can lock the operators out.

One client over its share gets 429 (its own doing: it may retry when one of
its clients leaves); a full server gets 503.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from aiohttp import web

from api.auth import Role

RETRY_SECONDS = "5"


class LiveSlots:
    def __init__(self, limit: int, per_client: int | None = None, reserve: int = 0) -> None:
        self.limit, self.held = limit, 0
        self.per_client = min(limit, per_client or limit)
        self.reserve = min(reserve, limit - 1)
        self._by_client: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, client: str = "", role: Role = Role.OPERATOR) -> Iterator[None]:
        self._check(client, role)
        self.held += 1
        self._by_client[client] += 1
        try:
            yield
        finally:
            self.held -= 1
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]

    def _check(self, client: str, role: Role) -> None:
        if self._by_client[client] >= self.per_client:
            raise web.HTTPTooManyRequests(
                reason=f"this client already holds {self.per_client} live connections",
                headers={"Retry-After": RETRY_SECONDS},
            )
        room = self.limit if role >= Role.OPERATOR else self.limit - self.reserve
        if self.held >= room:
            raise web.HTTPServiceUnavailable(
                reason=f"{self.held} live clients already connected; try again later",
                headers={"Retry-After": RETRY_SECONDS},
            )

"""A bound on live clients (WebSockets and long polls) held at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web


class LiveSlots:
    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self.held >= self.limit:
            raise web.HTTPServiceUnavailable(
                reason=f"{self.limit} live clients already connected; try again later"
            )
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1

"""A gate on the way to the real broker, for a hung-broker test: clients
bootstrap through it; while it is shut, their requests wait there (as behind
a broker that has stopped answering); opened, everything flows on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Gate:
    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def open(self) -> None:
        self.opened.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self.opened.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(
        self, target: tuple[str, int], client: asyncio.StreamReader, to_client: asyncio.StreamWriter
    ) -> None:
        broker, to_broker = await asyncio.open_connection(*target)
        for pipe in (self._pipe(client, to_broker), self._pipe(broker, to_client)):
            task = asyncio.create_task(pipe)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


@contextlib.asynccontextmanager
async def shut_gate(bootstrap: str) -> AsyncIterator[tuple[Gate, str]]:
    """A shut gate to the broker at `bootstrap` (host:port); the gate and its
    own bootstrap address. Opened and closed at the end."""
    host, port = bootstrap.rsplit(":", 1)
    gate = Gate()
    server = await asyncio.start_server(
        lambda r, w: gate._serve((host, int(port)), r, w), "127.0.0.1", 0
    )
    try:
        yield gate, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        gate.open()
        server.close()
        for task in list(gate.tasks):
            task.cancel()

"""A faust-streaming pass-through agent: every record of one topic copied, key
and value as bytes, to another. The worker process of faust_eos.py.

    python scripts/bench/faust_agent.py worker --without-web -l warning

Configured by the environment (faust_eos.py sets it): FAUST_APP_ID,
FAUST_BROKER (host:port), FAUST_GUARANTEE (exactly_once | at_least_once),
FAUST_SOURCE, FAUST_SINK, FAUST_PARTITIONS, FAUST_DATADIR.

faust-streaming is not a dependency of the product: install the `faust`
extra (`pip install -e '.[faust]'`) to run this.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable

import faust

env = os.environ
app = faust.App(
    env["FAUST_APP_ID"],
    broker=f"kafka://{env['FAUST_BROKER']}",
    processing_guarantee=env["FAUST_GUARANTEE"],
    topic_partitions=int(env["FAUST_PARTITIONS"]),
    datadir=env["FAUST_DATADIR"],
    store="memory://",
    web_enabled=False,
)
source = app.topic(
    env["FAUST_SOURCE"],
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)
sink = app.topic(
    env["FAUST_SINK"],
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)


@app.agent(source)
async def copy(stream: AsyncIterable[bytes]) -> None:
    async for key, value in stream.items():  # type: ignore[attr-defined]
        await sink.send(key=key, value=value)


if __name__ == "__main__":
    app.main()

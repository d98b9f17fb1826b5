"""The dead-letter list, read once per change of its topic: a long-running
process (the API) keeps the last list of each dead-letter topic and serves it
again while neither that topic nor the redrive ledger has moved.

"Moved" is told by the watermarks (read_committed): a committed write, an
aborted one (its marker) or a purge moves them, so a list kept under the same
watermarks is the list a full read would give. The watermarks are read
*before* the topic, so whatever is committed during a read moves them past
the kept ones and the next list reads again. Concurrent lists of one topic
wait for a single read instead of each reading it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from config import Settings
from ops.dead_letters.ledger import ledger_topic
from ops.dead_letters.letters import dlq_topic
from ops.dead_letters.service import list_dead_letters, names_of
from streams.kafka.errors import NoSuchTopic
from streams.kafka.topics import watermarks

Marks = dict[int, tuple[int, int]]
Rows = list[dict[str, Any]]
STRIPES = 16  # locks shared by topic name: a bounded set, whatever names clients send


class ListingCache:
    """The last list of up to `topics` dead-letter topics, each with the
    watermarks (its own and the ledger's) it was read under."""

    def __init__(self, topics: int = 64) -> None:
        self.topics = topics
        self.reads = 0  # full reads done: what the cache saves is visible
        self._kept: OrderedDict[str, tuple[tuple[Marks, Marks | None], Rows]] = OrderedDict()
        self._guard = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(STRIPES)]

    def list(self, settings: Settings, topic: str) -> Rows:
        """`service.list_dead_letters(settings, topic)`, read again only when it may differ."""
        dlq = dlq_topic(names_of(settings), topic)
        with self._stripes[hash(dlq) % STRIPES]:
            marks = (watermarks(settings, dlq), _ledger_marks(settings))
            kept = self._get(dlq)
            if kept is not None and kept[0] == marks:
                return kept[1]
            rows = list_dead_letters(settings, dlq)
            self._put(dlq, marks, rows)
            return rows

    def _get(self, dlq: str) -> tuple[tuple[Marks, Marks | None], Rows] | None:
        with self._guard:
            return self._kept.get(dlq)

    def _put(self, dlq: str, marks: tuple[Marks, Marks | None], rows: Rows) -> None:
        with self._guard:
            self.reads += 1
            self._kept[dlq] = (marks, rows)
            self._kept.move_to_end(dlq)
            while len(self._kept) > self.topics:
                self._kept.popitem(last=False)


def _ledger_marks(settings: Settings) -> Marks | None:
    """The ledger's watermarks; None before its first redrive created it."""
    try:
        return watermarks(settings, ledger_topic(settings))
    except NoSuchTopic:
        return None

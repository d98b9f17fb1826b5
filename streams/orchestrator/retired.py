"""What the orchestrator keeps of retired migrations, per input partition.

A retired migration (domain.retention) is an 8-byte fingerprint of its id and
the sequence of its last event: 12 bytes, against a few kilobytes for a whole
state. In memory they are sorted arrays (searched by bisection) plus a small
dict of the latest, merged in when it grows; in the changelog they are the
same 12-byte entries, in order of retirement, cut into chunks of
`CHUNK_ENTRIES` stored under the keys `RETIRED_KEY_PREFIX` + chunk number
(no migration id holds a NUL, domain.text): only the last chunk is rewritten
as it fills, and compaction keeps each chunk's latest record.

A migration retired again (after a rejected command moved its version on) is
appended once more; on loading, the highest version of a fingerprint wins.
Two ids with the same fingerprint (a 64-bit hash: about one chance in 10^7
among ten million retired ids) would have the second taken for retired.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from hashlib import blake2b

ENTRY = struct.Struct("<QI")  # fingerprint, version
CHUNK_ENTRIES = 8192
CHUNK_BYTES = CHUNK_ENTRIES * ENTRY.size
RETIRED_KEY_PREFIX = b"\x00retired:"
MERGE_AT = 4096  # recent entries kept apart before a merge (at least)


def fingerprint(migration_id: str) -> int:
    return int.from_bytes(blake2b(migration_id.encode(), digest_size=8).digest(), "little")


def is_retired_key(key: bytes | None) -> bool:
    return key is not None and key.startswith(RETIRED_KEY_PREFIX)


def chunk_key(number: int) -> bytes:
    return RETIRED_KEY_PREFIX + str(number).encode()


class RetiredIds:
    """The retired migrations of one partition."""

    def __init__(self) -> None:
        self._keys = array("Q")  # sorted
        self._versions = array("I")  # alongside
        self._recent: dict[int, int] = {}  # not yet merged
        self._log = bytearray()  # every entry, in order: what the changelog holds
        self._written = 0  # bytes of _log the changelog holds

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def version(self, migration_id: str) -> int | None:
        """The version of the retired migration `migration_id`, or None."""
        if not self._keys and not self._recent:
            return None
        fp = fingerprint(migration_id)
        found = self._recent.get(fp)
        if found is not None:
            return found
        at = bisect_left(self._keys, fp)
        if at < len(self._keys) and self._keys[at] == fp:
            return self._versions[at]
        return None

    def add(self, migration_id: str, version: int) -> None:
        fp = fingerprint(migration_id)
        self._log += ENTRY.pack(fp, version)
        self._remember(fp, version)

    def records(self, extra: Sequence[tuple[str, int]] = ()) -> list[tuple[bytes, bytes]]:
        """The chunk records (key, value) the changelog lacks, with `extra`
        entries as if added: what a commit writes."""
        log = self._log + b"".join(ENTRY.pack(fingerprint(m), v) for m, v in extra)
        if len(log) == self._written:
            return []
        first, last = self._written // CHUNK_BYTES, (len(log) - 1) // CHUNK_BYTES
        return [
            (chunk_key(n), bytes(log[n * CHUNK_BYTES : (n + 1) * CHUNK_BYTES]))
            for n in range(first, last + 1)
        ]

    def written(self) -> None:
        """Every entry added is in the changelog."""
        self._written = len(self._log)

    def load_chunk(self, number: int, value: bytes) -> None:
        """A chunk read from the changelog (chunks in any order, each once)."""
        end = (number + 1) * CHUNK_BYTES
        if len(self._log) < end:
            self._log.extend(bytes(end - len(self._log)))
        self._log[number * CHUNK_BYTES : number * CHUNK_BYTES + len(value)] = value
        if len(value) < CHUNK_BYTES:  # the last chunk: the log ends here
            del self._log[number * CHUNK_BYTES + len(value) :]
        self._written = len(self._log)

    def loaded(self) -> None:
        """After the chunks are loaded: build the lookup from the log."""
        self._recent = {}
        self._sorted(list(ENTRY.iter_unpack(self._log)))

    def _remember(self, fp: int, version: int) -> None:
        at = bisect_left(self._keys, fp)
        if at < len(self._keys) and self._keys[at] == fp:
            self._versions[at] = version
            return
        self._recent[fp] = version
        if len(self._recent) >= max(MERGE_AT, len(self._keys) // 8):
            self._merge()

    def _merge(self) -> None:
        self._sorted([*zip(self._keys, self._versions, strict=True), *self._recent.items()])
        self._recent = {}

    def _sorted(self, entries: list[tuple[int, int]]) -> None:
        """The lookup from `entries`: per fingerprint, its highest version."""
        entries.sort()  # by fingerprint, then version: the last of a run is the highest
        last = [
            i
            for i in range(len(entries))
            if i + 1 == len(entries) or entries[i + 1][0] != entries[i][0]
        ]
        self._keys = array("Q", (entries[i][0] for i in last))
        self._versions = array("I", (entries[i][1] for i in last))

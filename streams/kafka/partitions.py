"""Where a key lives: the partition Java's default partitioner gives it.

Every producer of the project hashes keys with murmur2 (`clients`), as the
Java client and Kafka's console producer do. Clients whose default differs
(librdkafka's `consistent_random`, kcat, some Go and .NET clients) put the
same key elsewhere; the orchestrator compares each input's partition with its
key's home and forwards what landed away from home.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2  # the Java client's hash, as aiokafka ships it


def home_partition(key: bytes, partitions: int) -> int:
    """The partition of `key` among `partitions` (Java's `Utils.toPositive(murmur2) % n`)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions

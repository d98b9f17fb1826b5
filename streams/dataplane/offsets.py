"""Which task offsets may be committed, when tasks finish out of order.

Tasks of many migrations share a partition and run side by side; a task's
offset is done when its run has ended and its result is written. The offset
to commit for a partition is the lowest one still pending (or one past the
highest seen): a worker that dies re-reads every unfinished task, and the
finished ones it re-reads answer from their checkpoints.
"""

from __future__ import annotations


class OffsetTracker:
    def __init__(self) -> None:
        self.pending: dict[int, set[int]] = {}
        self.next: dict[int, int] = {}
        self.committed: dict[int, int] = {}

    def add(self, partition: int, offset: int) -> None:
        self.pending.setdefault(partition, set()).add(offset)
        self.next[partition] = max(self.next.get(partition, 0), offset + 1)

    def done(self, partition: int, offset: int) -> None:
        self.pending.get(partition, set()).discard(offset)

    def committable(self) -> dict[int, int]:
        """Per partition, the offset to commit, where it moved since last time."""
        moved = {}
        for partition, upto in self.next.items():
            pending = self.pending.get(partition)
            offset = min(pending) if pending else upto
            if offset > self.committed.get(partition, -1):
                moved[partition] = offset
        return moved

    def mark_committed(self, offsets: dict[int, int]) -> None:
        self.committed.update(offsets)

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            for table in (self.pending, self.next, self.committed):
                table.pop(partition, None)

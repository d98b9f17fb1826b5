"""When a snapshot's keeper lets it go: the rules, pure, over one look at its
migration's extract checkpoints (streams.dataplane.keeping takes the look).

The keeper holds the snapshot while a copy in it may still go on. It lets go
when the migration is cancelled; when every extract slice that names the
snapshot is done; when no slice names it any more though some did (a restart
took a new one); when none named it within the lease of its export (the
worker died before recording it); or when none of its slices moved on within
the lease (a pause, or a crash nobody resumed). The lease is
PHASE_SNAPSHOT_LEASE_SECONDS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    """The migration's extract checkpoints, as the keeper last saw them."""

    cancelled: bool = False
    slices: int = 0  # extract slices whose position names the snapshot
    running: int = 0  # of those, the ones not done
    idle: float = 0.0  # seconds since the latest of them was updated (database clock)


def verdict(seen: Seen, named_before: bool, held: float, lease: float) -> str | None:
    """Why the keeper lets the snapshot go now (None: it holds on). `held`:
    seconds since the export; `named_before`: a slice named it at an earlier look."""
    if seen.cancelled:
        return "the migration is cancelled"
    if seen.slices == 0 and named_before:
        return "no extract slice names it any more (a new snapshot replaced it)"
    if seen.slices == 0 and held > lease:
        return f"no extract slice named it within the lease ({lease:g} s)"
    if seen.slices > 0 and seen.running == 0:
        return f"its extract slices are done ({seen.slices})"
    if seen.slices > 0 and seen.idle > lease:
        return f"no copy progress for {seen.idle:.0f} s (lease {lease:g} s)"
    return None

"""When a snapshot's keeper lets it go (streams.dataplane.lease): one case per rule."""

from __future__ import annotations

import pytest

from streams.dataplane.lease import Seen, verdict

LEASE = 10.0


@pytest.mark.parametrize(
    ("seen", "named_before", "held", "why"),
    [
        (Seen(), False, 3, None),  # just exported: the copy has not recorded it yet
        (Seen(slices=2, running=2, idle=3), True, 30, None),  # copying
        (Seen(slices=2, running=1, idle=9), True, 300, None),  # one slice done, one moving
        (Seen(cancelled=True, slices=1, running=1), True, 1, "the migration is cancelled"),
        (Seen(slices=2, running=0), True, 5, "its extract slices are done (2)"),
        (Seen(slices=1, running=0), False, 1, "its extract slices are done (1)"),
        (
            Seen(),
            True,
            5,
            "no extract slice names it any more (a new snapshot replaced it)",
        ),
        (Seen(), False, 11, "no extract slice named it within the lease (10 s)"),
        (Seen(slices=1, running=1, idle=12.4), True, 60, "no copy progress for 12 s (lease 10 s)"),
    ],
)
def test_the_keeper_holds_or_says_why_it_lets_go(
    seen: Seen, named_before: bool, held: float, why: str | None
) -> None:
    assert verdict(seen, named_before, held, LEASE) == why

"""The garbage collector's pace for a process that keeps many objects: the
projector's and the rebuild's rows in memory (`projections.row_cache`).

CPython collects its youngest generation every 700 new container objects and
the older ones after so many of those; each collection of an older
generation walks every object in it. With tens of thousands of rows kept, a
replay spent about a quarter of its CPU in the collector (100,000 events:
69 µs of CPU per event with the defaults, 51 with these thresholds). The
objects alive at start-up (modules, settings) are frozen out of every
collection; a young generation of 50,000 keeps the collections of the older
ones rare. Reference cycles are still collected, later.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def pace_for_many_objects() -> None:
    """Set this process's collector for a long-lived store of rows."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)

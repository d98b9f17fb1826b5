"""The stop flag of a stream-processor process: SIGTERM and SIGINT set it, and
the process finishes its batch, commits and leaves its group.

Imported first by each processor's `__main__`, before the heavy imports, so a
SIGTERM during start-up is a clean stop too.
"""

from __future__ import annotations

import signal
import threading

STOP = threading.Event()
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda *_: STOP.set())

"""What a process's exit status means, for the supervisor that restarts it.

Every process (orchestrator worker, phase worker, projector, API) uses these:

- 0 `STOPPED`: stopped on request (SIGTERM/SIGINT) after finishing its work
  in flight; nothing to restart unless the operator wants it running.
- 1 `FAILED`: an unexpected error (a defect); restart it, and read its log.
- 2 `MISCONFIGURED`: its settings are invalid; restarting cannot help.
- 3 `FENCED`: Kafka fenced it (a newer instance with the same id took over) or
  its client met a fatal error it could not recover from in the process; a
  restart starts clean and takes over from the committed offsets.
- 4 `HUNG`: a Kafka client call overran its own timeout (the watchdog ended
  the process rather than let it hang its consumer group); restart it.
"""

from __future__ import annotations

STOPPED = 0
FAILED = 1
MISCONFIGURED = 2
FENCED = 3
HUNG = 4

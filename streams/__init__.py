"""The stream processors: `orchestrator/` (the exactly-once loop over commands
and phase results) and `dataplane/` (the phase workers), each a process of its
own, and `kafka/`, the one Kafka edge they and the other processes share."""

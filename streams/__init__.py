"""The orchestrator worker: the pure domain, the exactly-once loop, metrics."""

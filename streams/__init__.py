"""The Faust app: topics, the orchestrator agent, and the pure domain."""

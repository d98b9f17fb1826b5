"""The orchestrator: commands and phase results in; events, phase tasks and
state out, each input's effects committed in one Kafka transaction."""

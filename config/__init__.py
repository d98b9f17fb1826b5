"""Configuration shared by every process: typed settings and the Kafka names."""

from config.names import KafkaNames
from config.settings import Settings, load_settings

__all__ = ["KafkaNames", "Settings", "load_settings"]

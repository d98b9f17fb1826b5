"""The one Kafka edge: client configuration, consumed records, retries of
transient errors, dead-letter headers, topic metadata, reading and measuring
topics. Every process builds its Kafka clients and dead letters from here."""

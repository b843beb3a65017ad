"""Helpers that start real dependencies (a Kafka-protocol broker) for tests."""

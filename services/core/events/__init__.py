"""Events between the services: CloudEvents 1.0 envelopes written to the transactional outbox."""

"""Database access: the ORM base, the models (one module per table) and the engine."""

"""Persistence: the engine, the unit of work that carries identity into PostgreSQL, the models."""

"""Test support: real PostgreSQL servers and throwaway databases (no mocks of the database)."""

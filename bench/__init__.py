"""The benchmark harness: the database's own floor (pgbench) against the service (wrk)."""

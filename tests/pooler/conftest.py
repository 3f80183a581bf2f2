"""A real PgBouncer (transaction mode) in front of the session's database, for this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pooler.pgbouncer import Pooler, pgbouncer


@pytest.fixture(scope="module")
def pooler(database_url: str) -> Iterator[Pooler]:
    with pgbouncer(database_url) as running:
        yield running


@pytest.fixture(scope="module")
def tracking_pooler(database_url: str) -> Iterator[Pooler]:
    """PgBouncer 1.21+ with `max_prepared_statements`, as Neon's pooler runs."""
    with pgbouncer(database_url, tracks_prepared_statements=True) as running:
        yield running

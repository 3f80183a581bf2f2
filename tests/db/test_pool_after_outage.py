"""After every pooled connection died at once (Neon scale-to-zero, a database restart with no
traffic), the very first request succeeds: the pool is refreshed as a whole, not one dead
connection per failed request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import psycopg
import pytest
from sqlalchemy import text

from db.engine import PoolConfig, build_engine
from db.session import Database, Query

POOL_SIZE = 4
WHO_AM_I = Query("SELECT pg_backend_pid() AS pid", {})


@pytest.fixture
def db_with_dead_pool(database_url: str, owner_conn: psycopg.Connection) -> Iterator[Database]:
    """A full pool (no pre-ping) whose every connection was then terminated while idle."""
    config = PoolConfig(size=POOL_SIZE, max_overflow=0, pre_ping=False)
    db = Database(build_engine(database_url, config))
    with ExitStack() as held:
        pids = [
            held.enter_context(db.engine.connect()).execute(text("SELECT pg_backend_pid()"))
            .scalar_one()
            for _ in range(POOL_SIZE)
        ]
    for pid in pids:
        owner_conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    yield db
    db.dispose()


def test_the_first_transaction_after_all_connections_died_succeeds(
    db_with_dead_pool: Database, alice: str
) -> None:
    for _ in range(POOL_SIZE):
        with db_with_dead_pool.transaction(alice) as session:
            session.execute(text("SELECT 1"))


def test_the_first_read_after_all_connections_died_succeeds(
    db_with_dead_pool: Database, alice: str
) -> None:
    for _ in range(POOL_SIZE):
        assert db_with_dead_pool.read(alice, WHO_AM_I)

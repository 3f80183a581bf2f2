"""After every pooled connection died at once (Neon scale-to-zero, a database restart with no
traffic), the very first request succeeds: the pool is refreshed as a whole, not one dead
connection per failed request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import psycopg
import pytest
from sqlalchemy import text

from db.engine import PoolConfig, build_engine
from db.unit_of_work import Query, UnitOfWork

POOL_SIZE = 4
WHO_AM_I = Query("SELECT pg_backend_pid() AS pid", {})


@pytest.fixture
def db_with_dead_pool(database_url: str, owner_conn: psycopg.Connection) -> Iterator[UnitOfWork]:
    """A full pool (no pre-ping) whose every connection was then terminated while idle."""
    config = PoolConfig(size=POOL_SIZE, max_overflow=0, pre_ping=False)
    db = UnitOfWork(build_engine(database_url, config))
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
    db_with_dead_pool: UnitOfWork, alice: str
) -> None:
    for _ in range(POOL_SIZE):
        db_with_dead_pool.run(alice, lambda session: session.execute(text("SELECT 1")))


def test_the_first_read_after_all_connections_died_succeeds(
    db_with_dead_pool: UnitOfWork, alice: str
) -> None:
    for _ in range(POOL_SIZE):
        assert asyncio.run(db_with_dead_pool.read(alice, WHO_AM_I))


def test_a_read_cut_off_mid_query_by_an_administrator_is_repeated(
    database_url: str, owner_conn: psycopg.Connection, alice: str
) -> None:
    db = UnitOfWork(build_engine(database_url, PoolConfig(size=2, max_overflow=0)))
    slow = Query("SELECT pg_backend_pid() AS pid, pg_sleep(0.3) AS slept", {})
    try:
        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(lambda: asyncio.run(db.read(alice, slow)))
            victim = wait_for_active_sleep(owner_conn)
            owner_conn.execute("SELECT pg_terminate_backend(%s, 5000)", (victim,))
            (row,) = reading.result(timeout=30)
    finally:
        db.dispose()
    assert row.pid != victim


def wait_for_active_sleep(conn: psycopg.Connection) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'tasks-api' AND state = 'active'"
            " AND query LIKE '%pg_sleep(0.3)%'"
        ).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.01)
    raise AssertionError("the read never started")

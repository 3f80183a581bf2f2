"""Prepared statements behind a real transaction-mode pooler (PgBouncer 1.18, which does not
track them): the default (`auto`) must prepare nothing there, and the reason is shown."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from db.engine import PREPARE_THRESHOLD, PoolConfig, build_engine, reaches_one_backend
from db.unit_of_work import Query
from tests.pooler.pgbouncer import SHARED_POOL_SIZE, Pooler

WHO_AM_I = Query("SELECT current_user AS role, %(tag)s::text AS tag", {"tag": "x"})


def test_server_side_prepared_statements_break_behind_this_pooler(pooler: Pooler) -> None:
    """Why DB_PREPARED_STATEMENTS=auto never prepares behind a pooler: two clients' named
    statements collide on the one server connection PgBouncer 1.18 (no prepared-statement
    support) gives them both."""
    with (
        psycopg.connect(pooler.single_url, prepare_threshold=0, autocommit=True) as first,
        psycopg.connect(pooler.single_url, prepare_threshold=0, autocommit=True) as second,
    ):
        first.execute("SELECT 1 WHERE %s::int = 1", (1,))
        with pytest.raises(errors.DuplicatePreparedStatement):
            second.execute("SELECT 2 WHERE %s::int = 2", (2,))
    with psycopg.connect(pooler.single_url, prepare_threshold=None, autocommit=True) as clean:
        clean.execute("DEALLOCATE ALL")


def test_a_connection_through_the_pooler_does_not_reach_one_backend(pooler: Pooler) -> None:
    """PgBouncer answers the startup with a cancel key of its own, not the backend's pid."""
    with psycopg.connect(pooler.url, prepare_threshold=None) as conn:
        assert not reaches_one_backend(conn)


def test_the_services_default_engine_prepares_nothing_behind_the_pooler(
    pooler: Pooler, database_url: str, jwt_secret: str
) -> None:
    from api.app import build_unit_of_work
    from tests.conftest import make_settings

    settings = make_settings(pooler.url, jwt_secret)
    assert settings.db_prepared_statements == "auto"
    database = build_unit_of_work(settings)
    try:
        for _ in range(3 * SHARED_POOL_SIZE):
            with database.engine.connect() as conn:
                driver = conn.connection.driver_connection
                assert isinstance(driver, psycopg.Connection)
                assert driver.prepare_threshold is None
                assert (
                    conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
                    == 0
                )
    finally:
        database.dispose()


def test_the_services_default_read_path_prepares_nothing_behind_the_pooler(
    pooler: Pooler, jwt_secret: str
) -> None:
    """The pipelined read follows the connection's threshold: repeated far past it, through
    every shared server connection, it leaves no prepared statement on any of them."""
    from api.app import build_unit_of_work
    from tests.conftest import make_settings

    database = build_unit_of_work(make_settings(pooler.url, jwt_secret))
    try:
        for _ in range(4 * PREPARE_THRESHOLD):
            (row,) = database.read("alice", WHO_AM_I)
            assert (row.role, row.tag) == ("tasks_app", "x")
    finally:
        database.dispose()
    clients = [psycopg.connect(pooler.url, prepare_threshold=None) for _ in range(SHARED_POOL_SIZE)]
    try:
        counts = [
            c.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() for c in clients
        ]
    finally:
        for conn in clients:
            conn.rollback()
            conn.close()
    assert counts == [(0,)] * SHARED_POOL_SIZE


def test_true_prepares_behind_the_pooler_when_asked(pooler: Pooler) -> None:
    """For a pooler that tracks them (PgBouncer 1.21+ with `max_prepared_statements`), the
    operator says so: `true` is not second-guessed."""
    engine = build_engine(pooler.url, PoolConfig(size=1, max_overflow=0, prepared_statements=True))
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            assert driver.prepare_threshold == PREPARE_THRESHOLD
    finally:
        engine.dispose()

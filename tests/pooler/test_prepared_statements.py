"""Prepared statements behind real transaction-mode poolers.

Behind PgBouncer 1.18, which does not track them, the default (`auto`) must prepare nothing,
and the reason is shown. Behind PgBouncer 1.21+ with `max_prepared_statements`, `true`
prepares and every read still answers as its own caller."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import errors
from sqlmodel import Session, select

from db.engine import PREPARE_THRESHOLD, PoolConfig, build_engine, reaches_one_backend
from db.models import Task
from db.unit_of_work import Query, UnitOfWork
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
            (row,) = asyncio.run(database.read("alice", WHO_AM_I))
            assert (row.role, row.tag) == ("tasks_app", "x")
    finally:
        database.dispose()
    counts = pooler.on_each_server_connection("SELECT count(*) FROM pg_prepared_statements")
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


# Behind PgBouncer 1.21+ with max_prepared_statements (tests/pooler/conftest.py), as Neon's
# pooler runs: what `true` is for.


def test_named_statements_of_two_clients_do_not_collide_behind_a_pooler_that_tracks_them(
    tracking_pooler: Pooler,
) -> None:
    """Control for the collision above: the same two clients on one server connection."""
    with (
        psycopg.connect(tracking_pooler.single_url, prepare_threshold=0, autocommit=True) as first,
        psycopg.connect(tracking_pooler.single_url, prepare_threshold=0, autocommit=True) as second,
    ):
        assert first.execute("SELECT 1 WHERE %s::int = 1", (1,)).fetchone() == (1,)
        assert second.execute("SELECT 2 WHERE %s::int = 2", (2,)).fetchone() == (2,)


def test_auto_prepares_nothing_even_behind_a_pooler_that_tracks_them(
    tracking_pooler: Pooler,
) -> None:
    """`auto` cannot tell a tracking pooler from one that breaks them; `true` is the operator's
    statement that it tracks them."""
    engine = build_engine(tracking_pooler.url, PoolConfig(size=1, max_overflow=0))
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            assert driver.prepare_threshold is None
    finally:
        engine.dispose()


def test_true_behind_a_tracking_pooler_prepares_reads_that_keep_each_callers_identity(
    tracking_pooler: Pooler,
) -> None:
    """Four client connections share one server connection: every read, prepared after its
    threshold, answers as its own caller, and the server connection holds the statements."""
    config = PoolConfig(size=4, max_overflow=0, prepared_statements=True)
    db = UnitOfWork(build_engine(tracking_pooler.single_url, config))
    users = [f"tracked-{n}" for n in range(8)]

    def reads(user: str) -> list[tuple[str, str]]:
        query = Query(
            "SELECT current_user AS role, current_setting('app.user_id', true) AS user_id",
            {},
        )
        return [
            (r.role, r.user_id)
            for _ in range(4 * PREPARE_THRESHOLD)
            for r in asyncio.run(db.read(user, query))
        ]

    try:
        with ThreadPoolExecutor(max_workers=len(users)) as pool:
            seen = dict(zip(users, pool.map(reads, users), strict=True))
    finally:
        db.dispose()
    assert all(
        rows == [("tasks_app", user)] * (4 * PREPARE_THRESHOLD) for user, rows in seen.items()
    )
    with psycopg.connect(tracking_pooler.single_url, prepare_threshold=None) as probe:
        statements = probe.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    assert any("current_setting('app.user_id', true) AS user_id" in s for (s,) in statements)


def test_true_behind_a_tracking_pooler_a_read_after_a_failed_write_answers(
    tracking_pooler: Pooler,
) -> None:
    """psycopg's `DEALLOCATE ALL` after a ROLLBACK goes through the pooler too."""
    config = PoolConfig(size=1, max_overflow=0, prepared_statements=True)
    db = UnitOfWork(build_engine(tracking_pooler.single_url, config))

    def refused(session: Session) -> None:
        session.exec(select(Task)).all()
        raise LookupError("the handler refuses the write")

    try:
        for _ in range(2 * PREPARE_THRESHOLD):
            asyncio.run(db.read("alice", WHO_AM_I))
            db.run("alice", lambda session: session.exec(select(Task)).all())
        with pytest.raises(LookupError):
            db.run("alice", refused)
        (row,) = asyncio.run(db.read("alice", WHO_AM_I))
        assert (row.role, row.tag) == ("tasks_app", "x")
    finally:
        db.dispose()


def test_auto_says_in_the_log_that_a_pooler_answers(
    pooler: Pooler, caplog: pytest.LogCaptureFixture
) -> None:
    engine = build_engine(pooler.url, PoolConfig(size=1, max_overflow=0))
    try:
        with caplog.at_level(logging.INFO, logger="db.engine"), engine.connect():
            pass
    finally:
        engine.dispose()
    said = [r.getMessage() for r in caplog.records if "prepared statements" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("prepared statements off: a pooler answers")

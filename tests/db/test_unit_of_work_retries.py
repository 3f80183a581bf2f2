"""The unit of work repeats a transaction only when that cannot repeat a committed effect.

Failures are real PostgreSQL ones: SQLSTATEs raised by the server, backends terminated with
pg_terminate_backend from a second connection, a statement timeout that fires.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from db.engine import PoolConfig, build_engine
from db.errors import RetryTransaction, is_unavailable
from db.identity import TransactionLimits
from db.unit_of_work import UnitOfWork


def raise_sqlstate(session: Session, sqlstate: str) -> None:
    session.execute(
        text(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$")
    )


def backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(owner_conn: psycopg.Connection, pid: int) -> None:
    owner_conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def count_titled(owner_conn: psycopg.Connection, title: str) -> int:
    row = owner_conn.execute("SELECT count(*) FROM task WHERE title = %s", (title,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def db(database_url: str) -> Iterator[UnitOfWork]:
    database = UnitOfWork(build_engine(database_url, PoolConfig(size=1, max_overflow=0)))
    yield database
    database.dispose()


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"], ids=["serialization", "deadlock"])
def test_a_conflict_is_retried_and_the_transaction_then_succeeds(
    db: UnitOfWork, alice: str, sqlstate: str
) -> None:
    attempts: list[int] = []

    def work(session: Session) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise_sqlstate(session, sqlstate)
        return str(session.execute(text("SELECT current_setting('app.user_id')")).scalar_one())

    assert db.run(alice, work) == alice
    assert len(attempts) == 2


def test_conflict_retries_are_bounded_and_the_last_error_is_a_503(
    db: UnitOfWork, alice: str
) -> None:
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        raise_sqlstate(session, "40P01")

    with pytest.raises(DBAPIError) as failed:
        db.run(alice, work)
    assert len(attempts) == db.limits.max_attempts == 3
    assert is_unavailable(failed.value)


def test_work_can_ask_to_be_run_again(db: UnitOfWork, alice: str) -> None:
    attempts: list[int] = []

    def work(_: Session) -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise RetryTransaction
        return len(attempts)

    assert db.run(alice, work) == 3


def test_an_ordinary_error_is_not_retried(db: UnitOfWork, alice: str) -> None:
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        raise_sqlstate(session, "23505")

    with pytest.raises(DBAPIError) as failed:
        db.run(alice, work)
    assert len(attempts) == 1
    assert not is_unavailable(failed.value)


def test_a_retried_attempt_leaves_nothing_of_the_failed_one(
    db: UnitOfWork, alice: str, owner_conn: psycopg.Connection
) -> None:
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        session.execute(
            text("INSERT INTO task (user_id, title) VALUES (:u, 'once-only')"), {"u": alice}
        )
        if len(attempts) == 1:
            raise_sqlstate(session, "40001")

    db.run(alice, work)
    assert count_titled(owner_conn, "once-only") == 1


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre-ping", "first-statement-retry"])
def test_a_pooled_connection_killed_while_idle_is_replaced_unnoticed(
    database_url: str, owner_conn: psycopg.Connection, alice: str, pre_ping: bool
) -> None:
    config = PoolConfig(size=1, max_overflow=0, pre_ping=pre_ping)
    db = UnitOfWork(build_engine(database_url, config))
    try:
        first = db.run(alice, backend_pid)
        terminate(owner_conn, first)
        second = db.run(alice, backend_pid)
    finally:
        db.dispose()
    assert second != first


def test_a_connection_lost_before_commit_is_retried_once_without_double_writes(
    db: UnitOfWork, alice: str, owner_conn: psycopg.Connection
) -> None:
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        session.execute(
            text("INSERT INTO task (user_id, title) VALUES (:u, 'lost-then-retried')"),
            {"u": alice},
        )
        if len(attempts) == 1:
            terminate(owner_conn, backend_pid(session))
            session.execute(text("SELECT 1"))

    db.run(alice, work)
    assert len(attempts) == 2
    assert count_titled(owner_conn, "lost-then-retried") == 1


def test_a_connection_lost_at_commit_is_not_retried_and_is_a_503(
    db: UnitOfWork, alice: str, owner_conn: psycopg.Connection
) -> None:
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        terminate(owner_conn, backend_pid(session))

    with pytest.raises(DBAPIError) as failed:
        db.run(alice, work)
    assert len(attempts) == 1
    assert is_unavailable(failed.value)


def test_a_statement_over_the_timeout_is_cancelled_and_is_a_503(
    database_url: str, alice: str
) -> None:
    limits = TransactionLimits(statement_timeout_ms=50)
    db = UnitOfWork(build_engine(database_url, PoolConfig(size=1, max_overflow=0)), limits)
    try:
        with pytest.raises(DBAPIError) as failed:
            db.run(alice, lambda session: session.execute(text("SELECT pg_sleep(2)")))
    finally:
        db.dispose()
    assert getattr(failed.value.orig, "sqlstate", None) == "57014"
    assert is_unavailable(failed.value)


def test_identity_and_limits_are_set_in_the_first_statement(db: UnitOfWork, alice: str) -> None:
    def settings(session: Session) -> tuple[str, ...]:
        row = session.execute(
            text(
                "SELECT current_user, current_setting('app.user_id'),"
                " current_setting('statement_timeout'),"
                " current_setting('idle_in_transaction_session_timeout')"
            )
        ).one()
        return tuple(str(v) for v in row)

    assert db.run(alice, settings) == ("tasks_app", alice, "5s", "10s")

"""UnitOfWork.read: the pipelined read path keeps the unit of work's guarantees.

The list and get endpoints read through it, so it must run as `tasks_app` with the caller's
identity, set transaction-locally, leave nothing on the pooled connection, and survive a pooled
connection that died while idle.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import pq
from sqlmodel import Session, select

from db import tasks
from db.engine import PoolConfig, build_engine
from db.models import Task
from db.tasks import SortOrder, StatusFilter
from db.unit_of_work import Query, UnitOfWork

WHO_AM_I = Query(
    "SELECT current_user AS role, current_setting('app.user_id', true) AS user_id,"
    " pg_backend_pid() AS pid",
    {},
)


@pytest.fixture
def single_connection_db(database_url: str) -> Iterator[UnitOfWork]:
    """One pooled connection, no pre-ping: every read reuses it, so leftovers would show."""
    db = UnitOfWork(build_engine(database_url, PoolConfig(size=1, max_overflow=0, pre_ping=False)))
    yield db
    db.dispose()


def test_a_read_runs_as_the_runtime_role_with_the_callers_identity(
    single_connection_db: UnitOfWork, alice: str
) -> None:
    (row,) = asyncio.run(single_connection_db.read(alice, WHO_AM_I))
    assert (row.role, row.user_id) == ("tasks_app", alice)


def test_a_read_leaves_no_role_or_identity_on_the_pooled_connection(
    single_connection_db: UnitOfWork, alice: str
) -> None:
    asyncio.run(single_connection_db.read(alice, WHO_AM_I))
    with single_connection_db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        row = raw.execute(
            "SELECT current_user, coalesce(current_setting('app.user_id', true), '')"
        ).fetchone()
    assert row is not None
    assert row[0] != "tasks_app"
    assert row[1] == ""


def test_a_read_sees_only_the_callers_rows(
    single_connection_db: UnitOfWork, seed: Callable[..., str], alice: str, bob: str
) -> None:
    mine = seed(alice, "alice's")
    seed(bob, "bob's")
    query = tasks.list_query(alice, status=StatusFilter.all, sort=SortOrder.created_desc, limit=50)
    (page,) = asyncio.run(single_connection_db.read(alice, query))
    assert [task["id"] for task in json.loads(page.body)] == [mine]


def test_another_users_task_reads_as_no_row(
    single_connection_db: UnitOfWork, seed: Callable[..., str], alice: str, bob: str
) -> None:
    bobs = seed(bob)
    assert (
        asyncio.run(single_connection_db.read(alice, tasks.get_query(alice, uuid.UUID(bobs)))) == []
    )


def test_a_pooled_connection_killed_while_idle_is_replaced_unnoticed(
    single_connection_db: UnitOfWork, owner_conn: psycopg.Connection, alice: str
) -> None:
    (first,) = asyncio.run(single_connection_db.read(alice, WHO_AM_I))
    owner_conn.execute("SELECT pg_terminate_backend(%s)", (first.pid,))
    (second,) = asyncio.run(single_connection_db.read(alice, WHO_AM_I))
    assert second.pid != first.pid
    assert (second.role, second.user_id) == ("tasks_app", alice)


def test_a_failing_query_rolls_back_and_the_connection_serves_the_next_read(
    single_connection_db: UnitOfWork, alice: str
) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        asyncio.run(single_connection_db.read(alice, Query("SELECT 1 / 0", {})))
    (row,) = asyncio.run(single_connection_db.read(alice, WHO_AM_I))
    assert row.user_id == alice


def _sent_while(db: UnitOfWork, tmp_path: Path, action: Callable[[], object]) -> list[list[str]]:
    """The frontend messages (libpq's protocol trace, one list of fields each) `action` sends
    on the one pooled connection of `db`, connected beforehand so the trace shows it alone."""
    asyncio.run(db.read("warm-up", WHO_AM_I))
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as sink:
        pooled = db.engine.raw_connection()
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        conn.pgconn.trace(sink.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        pooled.close()
        action()
        conn.pgconn.untrace()
    return [line.split("\t") for line in trace.read_text().splitlines() if line.startswith("F\t")]


def test_a_read_is_one_round_trip(
    single_connection_db: UnitOfWork, alice: str, tmp_path: Path
) -> None:
    """BEGIN, identity, query and COMMIT leave behind a single Sync (libpq's protocol trace)."""
    messages = _sent_while(
        single_connection_db,
        tmp_path,
        lambda: asyncio.run(single_connection_db.read(alice, WHO_AM_I)),
    )
    sent = [fields[2] for fields in messages]
    assert sent.count("Sync") == 1
    assert sent.index("Sync") > max(i for i, message in enumerate(sent) if message == "Execute")


def test_a_write_opens_with_begin_and_the_identity_statement_in_one_round_trip(
    single_connection_db: UnitOfWork, alice: str, tmp_path: Path
) -> None:
    """BEGIN, identity and Sync, then the work's one statement, then COMMIT: three exchanges
    (psycopg on its own sends BEGIN as a fourth)."""
    rows: list[object] = []
    sent = _sent_while(
        single_connection_db,
        tmp_path,
        lambda: rows.extend(single_connection_db.run(alice, lambda s: s.exec(select(Task)).all())),
    )
    assert rows == []
    exchanges = [message for _, _, message, *_ in sent if message in ("Sync", "Query")]
    assert len(exchanges) == 3 and exchanges[0] == "Sync"
    first_sync = next(i for i, (_, _, message, *_) in enumerate(sent) if message == "Sync")
    opening = " ".join("\t".join(fields) for fields in sent[:first_sync])
    assert "BEGIN" in opening and "set_config" in opening
    assert opening.index("BEGIN") < opening.index("set_config")


def test_with_prepared_statements_a_repeated_read_is_prepared_and_keeps_its_identity(
    database_url: str, seed: Callable[..., str], alice: str
) -> None:
    """DB_PREPARED_STATEMENTS=true: the hot read is prepared after a few runs (direct
    PostgreSQL here; behind a pooler only with prepared-statement tracking, tests/pooler)."""
    config = PoolConfig(size=1, max_overflow=0, prepared_statements=True)
    db = UnitOfWork(build_engine(database_url, config))
    try:
        mine = seed(alice)
        query = tasks.list_query(
            alice, status=StatusFilter.all, sort=SortOrder.created_desc, limit=50
        )
        pages = [asyncio.run(db.read(alice, query))[0] for _ in range(8)]
        assert all([t["id"] for t in json.loads(page.body)] == [mine] for page in pages)
        (row,) = asyncio.run(db.read(alice, WHO_AM_I))
        assert (row.role, row.user_id) == ("tasks_app", alice)
        with db.engine.connect() as conn:
            prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").all()
        assert any("row_to_json" in statement for (statement,) in prepared)
    finally:
        db.dispose()


def test_with_prepared_statements_a_read_after_a_failed_write_on_its_connection_succeeds(
    database_url: str, alice: str
) -> None:
    """Once psycopg has prepared statements of its own on the write path, a rolled-back
    transaction makes it send `DEALLOCATE ALL`, which drops the read's too: the next read on
    that connection must still answer."""
    config = PoolConfig(size=1, max_overflow=0, prepared_statements=True)
    db = UnitOfWork(build_engine(database_url, config))

    def refused(session: Session) -> None:
        session.exec(select(Task).where(Task.user_id == alice)).all()
        raise LookupError("the handler refuses the write")

    try:
        for _ in range(8):
            asyncio.run(db.read(alice, WHO_AM_I))
            db.run(alice, lambda session: session.exec(select(Task)).all())
        with pytest.raises(LookupError):
            db.run(alice, refused)
        (row,) = asyncio.run(db.read(alice, WHO_AM_I))
        assert (row.role, row.user_id) == ("tasks_app", alice)
    finally:
        db.dispose()


def test_with_prepared_statements_a_replaced_connection_prepares_again(
    database_url: str, owner_conn: psycopg.Connection, alice: str
) -> None:
    """A new server session knows no prepared statement: the replacement for a connection the
    server ended must prepare its statements again, not call names it never parsed."""
    config = PoolConfig(size=1, max_overflow=0, prepared_statements=True)
    db = UnitOfWork(build_engine(database_url, config))
    try:
        first = [asyncio.run(db.read(alice, WHO_AM_I))[0] for _ in range(8)][-1]
        owner_conn.execute("SELECT pg_terminate_backend(%s)", (first.pid,))
        after = [asyncio.run(db.read(alice, WHO_AM_I))[0] for _ in range(8)]
        assert all((row.role, row.user_id) == ("tasks_app", alice) for row in after)
        assert after[-1].pid != first.pid
    finally:
        db.dispose()

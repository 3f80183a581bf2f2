"""db.pipeline: statements sent together as one transaction, bound, and answered in order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from db.pipeline import Prepared, _roll_back, begin, run_pipeline, statement


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as connection:
        yield connection


def _prepared_names(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
    conn.rollback()
    return {name for (name,) in rows}


def test_named_placeholders_become_positional_in_order_of_first_use() -> None:
    converted = statement("SELECT %(b)s, %(a)s, %(b)s, 10 %% 3")
    assert converted.sql == b"SELECT $1, $2, $1, 10 % 3"
    assert converted.names == ("b", "a")


def test_each_statements_rows_come_back_in_order_with_their_column_names(
    conn: psycopg.Connection,
) -> None:
    first, second = asyncio.run(
        run_pipeline(
            conn, [("SELECT 1 AS one", {}), ("SELECT n FROM generate_series(1, 3) AS n", {})]
        )
    )
    assert [row.one for row in first] == [1]
    assert [row.n for row in second] == [1, 2, 3]


def test_values_are_bound_and_loaded_with_their_types(conn: psycopg.Connection) -> None:
    hostile = "'); DROP TABLE task; --"
    task_id = uuid.uuid4()
    moment = datetime(2026, 12, 1, 10, 30, 15, 123456, tzinfo=UTC)
    ((row,),) = asyncio.run(
        run_pipeline(
            conn,
            [
                (
                    "SELECT %(text)s::text AS text, %(id)s::uuid AS id, %(at)s::timestamptz AS at,"
                    " %(n)s::integer + 1 AS n, %(missing)s::text AS missing",
                    {"text": hostile, "id": task_id, "at": moment, "n": 41, "missing": None},
                )
            ],
        )
    )
    assert (row.text, row.id, row.at, row.n, row.missing) == (hostile, task_id, moment, 42, None)


def test_the_statements_share_one_transaction_that_ends_at_the_sync(
    conn: psycopg.Connection,
) -> None:
    _, (row,) = asyncio.run(
        run_pipeline(
            conn,
            [
                ("SELECT set_config('app.user_id', %(user)s, true)", {"user": "alice"}),
                ("SELECT current_setting('app.user_id') AS user_id", {}),
            ],
        )
    )
    assert row.user_id == "alice"
    assert conn.info.transaction_status == TransactionStatus.IDLE
    after = conn.execute("SELECT current_setting('app.user_id', true)").fetchone()
    assert after is not None and after[0] in (None, "")


Statement = tuple[str, Mapping[str, Any]]
_DIVIDE_BY_ZERO: Statement = ("SELECT 1 / 0", {})


def _tasks_left_by(
    conn: psycopg.Connection, owner_conn: psycopg.Connection, *, insert_first: bool
) -> int:
    """Run an insert and a failing statement in one pipeline (in the order asked); how many
    of the inserted tasks remain."""
    marker = f"pipeline-{uuid.uuid4().hex}"
    insert: Statement = (
        "INSERT INTO task (user_id, title) VALUES (%(user)s, 'x')",
        {"user": marker},
    )
    statements = [insert, _DIVIDE_BY_ZERO] if insert_first else [_DIVIDE_BY_ZERO, insert]
    with pytest.raises(psycopg.errors.DivisionByZero):
        asyncio.run(run_pipeline(conn, statements))
    row = owner_conn.execute("SELECT count(*) FROM task WHERE user_id = %s", (marker,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_failed_statement_is_raised_and_nothing_after_it_runs(
    conn: psycopg.Connection, owner_conn: psycopg.Connection
) -> None:
    assert _tasks_left_by(conn, owner_conn, insert_first=False) == 0


def test_a_failure_rolls_back_what_ran_before_it(
    conn: psycopg.Connection, owner_conn: psycopg.Connection
) -> None:
    assert _tasks_left_by(conn, owner_conn, insert_first=True) == 0


def test_after_a_failure_the_connection_is_idle_and_serves_the_next_pipeline(
    conn: psycopg.Connection,
) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        asyncio.run(run_pipeline(conn, [_DIVIDE_BY_ZERO]))
    assert conn.info.transaction_status == TransactionStatus.IDLE
    ((row,),) = asyncio.run(run_pipeline(conn, [("SELECT 2 AS two", {})]))
    assert row.two == 2


def test_a_connection_the_server_ended_is_raised_as_operational_and_closed(
    conn: psycopg.Connection, owner_conn: psycopg.Connection
) -> None:
    owner_conn.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(run_pipeline(conn, [("SELECT 1", {})]))
    assert conn.closed


def test_a_pipeline_larger_than_the_socket_buffers_is_sent_whole(conn: psycopg.Connection) -> None:
    # 8 MB does not fit the kernel's buffers: libpq's flush returns before it is all sent, and
    # the exchange waits for the socket to take more (reading the server's answers meanwhile).
    text = "x" * 8_000_000
    ((row,),) = asyncio.run(run_pipeline(conn, [("SELECT length(%(t)s::text) AS n", {"t": text})]))
    assert row.n == len(text)


def test_a_transaction_left_open_is_rolled_back_before_the_pipeline_opens_its_own(
    conn: psycopg.Connection,
) -> None:
    conn.execute("SELECT set_config('app.user_id', 'left-over', true)")
    left_open = conn.info.transaction_status
    assert left_open == TransactionStatus.INTRANS
    ((row,),) = asyncio.run(
        run_pipeline(conn, [("SELECT current_setting('app.user_id', true) AS v", {})])
    )
    assert row.v in (None, "")
    assert conn.info.transaction_status == TransactionStatus.IDLE


def test_without_prepare_no_statement_is_prepared(conn: psycopg.Connection) -> None:
    for _ in range(6):
        asyncio.run(run_pipeline(conn, [("SELECT %(n)s::int AS n", {"n": 1})]))
    assert not any(name.startswith("tasks_api_") for name in _prepared_names(conn))


def test_a_statement_is_prepared_once_it_ran_threshold_times(conn: psycopg.Connection) -> None:
    prepared = Prepared(threshold=2)
    for _ in range(2):
        asyncio.run(run_pipeline(conn, [("SELECT %(n)s::int AS n", {"n": 1})], prepared))
    assert not any(name.startswith("tasks_api_") for name in _prepared_names(conn))
    ((row,),) = asyncio.run(run_pipeline(conn, [("SELECT %(n)s::int AS n", {"n": 7})], prepared))
    assert row.n == 7
    names = {name.decode() for name in prepared.names}
    assert len(names) == 1 and names <= _prepared_names(conn)
    ((row,),) = asyncio.run(run_pipeline(conn, [("SELECT %(n)s::int AS n", {"n": 8})], prepared))
    assert row.n == 8  # now Bind/Execute of the prepared statement alone


def test_a_statement_whose_parse_failed_is_not_taken_for_prepared(
    conn: psycopg.Connection,
) -> None:
    prepared = Prepared(threshold=0)
    with pytest.raises(psycopg.errors.UndefinedTable):
        asyncio.run(run_pipeline(conn, [("SELECT * FROM no_such_table_here", {})], prepared))
    assert prepared.names == set()


def test_a_statement_repeated_in_one_pipeline_is_prepared_once(conn: psycopg.Connection) -> None:
    prepared = Prepared(threshold=0)
    first, second = asyncio.run(
        run_pipeline(
            conn,
            [("SELECT %(n)s::int AS n", {"n": 1}), ("SELECT %(n)s::int AS n", {"n": 2})],
            prepared,
        )
    )
    assert (first[0].n, second[0].n) == (1, 2)
    assert len(prepared.names) == 1


def test_a_statement_the_server_dropped_is_prepared_again(conn: psycopg.Connection) -> None:
    """`DEALLOCATE ALL` (psycopg sends it after a ROLLBACK) leaves our names pointing at
    nothing: the pipeline that finds out runs again, parsing them anew."""
    prepared = Prepared(threshold=0)
    asyncio.run(run_pipeline(conn, [("SELECT %(n)s::int AS n", {"n": 1})], prepared))
    conn.execute("DEALLOCATE ALL")
    conn.commit()
    ((row,),) = asyncio.run(run_pipeline(conn, [("SELECT %(n)s::int AS n", {"n": 2})], prepared))
    assert row.n == 2
    assert {name.decode() for name in prepared.names} <= _prepared_names(conn)


def test_begin_leaves_the_transaction_open_with_its_statements_settings(
    conn: psycopg.Connection,
) -> None:
    (row,) = begin(conn, "SELECT set_config('app.user_id', %(u)s, true) AS v", {"u": "alice"})
    assert row.v == "alice"
    assert conn.info.transaction_status == TransactionStatus.INTRANS
    assert conn.execute("SELECT current_setting('app.user_id')").fetchone() == ("alice",)
    conn.rollback()
    assert conn.execute("SELECT current_setting('app.user_id', true)").fetchone() in [
        (None,),
        ("",),
    ]


def test_a_failed_begin_is_rolled_back_and_the_connection_serves_the_next(
    conn: psycopg.Connection,
) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        begin(conn, "SELECT 1 / %(zero)s::int", {"zero": 0})
    assert conn.info.transaction_status == TransactionStatus.IDLE
    (row,) = begin(conn, "SELECT %(n)s::int AS n", {"n": 3})
    assert row.n == 3


def test_begin_parses_a_statement_the_server_dropped_again(conn: psycopg.Connection) -> None:
    prepared = Prepared(threshold=0)
    begin(conn, "SELECT %(n)s::int AS n", {"n": 1}, prepared)
    conn.commit()
    conn.execute("DEALLOCATE ALL")
    conn.commit()
    (row,) = begin(conn, "SELECT %(n)s::int AS n", {"n": 2}, prepared)
    assert row.n == 2
    assert conn.info.transaction_status == TransactionStatus.INTRANS


def test_a_begun_transaction_whose_server_ended_is_closed_not_raised_on_roll_back(
    conn: psycopg.Connection, owner_conn: psycopg.Connection
) -> None:
    """The failure that made `begin` roll back must surface, not the rollback's own."""
    (row,) = begin(conn, "SELECT pg_backend_pid() AS pid", {})
    owner_conn.execute("SELECT pg_terminate_backend(%s, 5000)", (row.pid,))
    _roll_back(conn)
    assert conn.closed

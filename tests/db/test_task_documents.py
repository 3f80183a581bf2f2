"""db/tasks.py's documents: PostgreSQL writes the bytes pydantic would have written.

List and get pass PostgreSQL's JSON through untouched, while writes (and If-Match) still encode
the row psycopg returns with pydantic's `TaskPublic`; an ETag from one must equal an ETag from
the other, so the two encodings are compared byte for byte here, on the awkward values: every
escaped character, whole-second timestamps, a session time zone other than UTC.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import namedtuple_row
from pydantic import TypeAdapter

from api.tasks.schemas import TaskPublic
from db import tasks
from db.identity import IDENTITY_SQL, TransactionLimits, identity_params
from db.tasks import SortOrder, StatusFilter
from db.unit_of_work import Query

TASK = TypeAdapter(TaskPublic)
TASKS = TypeAdapter(list[TaskPublic])
# Every character JSON must escape that PostgreSQL text can hold, and some that it must not.
AWKWARD = "".join(chr(c) for c in range(1, 0x20)) + '"\\/\x7f\x85\u2028\u2029é\U0001f600 end'


@pytest.fixture
def read_as(database_url: str) -> Callable[..., Any]:
    """Run one Query as a user (as the unit of work does) in a session time zone of choice."""

    def read(user_id: str, query: Query, *, time_zone: str = "UTC") -> list[Any]:
        with psycopg.connect(database_url, options=f"-c TimeZone={time_zone}") as conn:
            conn.execute(IDENTITY_SQL, identity_params(user_id, TransactionLimits()))
            cursor = conn.cursor(row_factory=namedtuple_row)
            rows = cursor.execute(query.sql, query.params).fetchall()
            conn.rollback()
            return rows

    return read


@pytest.fixture
def task_row(database_url: str) -> Callable[..., Any]:
    """The task's row as psycopg returns it to the write path, in the given time zone."""

    def row(task_id: str, *, time_zone: str = "UTC") -> Any:
        with psycopg.connect(
            database_url, options=f"-c TimeZone={time_zone}", row_factory=namedtuple_row
        ) as conn:
            return conn.execute("SELECT * FROM task WHERE id = %s", (task_id,)).fetchone()

    return row


@contextmanager
def _no_fraction(owner_conn: psycopg.Connection, task_id: str) -> Iterator[None]:
    owner_conn.execute(
        "UPDATE task SET created_at = date_trunc('second', created_at),"
        " updated_at = date_trunc('second', updated_at) WHERE id = %s",
        (task_id,),
    )
    yield


def _pydantic(row: Any) -> bytes:
    return TASK.dump_json(TASK.validate_python(row, from_attributes=True))


def test_a_task_document_is_the_bytes_pydantic_writes_for_its_row(
    read_as: Callable[..., Any], task_row: Callable[..., Any], seed: Callable[..., str], alice: str
) -> None:
    task_id = seed(alice, "title " + AWKWARD)
    (found,) = read_as(alice, tasks.get_query(alice, uuid.UUID(task_id)))
    assert found.body.encode() == _pydantic(task_row(task_id))


def test_a_description_with_every_escaped_character_encodes_as_pydantic_does(
    owner_conn: psycopg.Connection,
    read_as: Callable[..., Any],
    task_row: Callable[..., Any],
    seed: Callable[..., str],
    alice: str,
) -> None:
    task_id = seed(alice)
    owner_conn.execute("UPDATE task SET description = %s WHERE id = %s", (AWKWARD, task_id))
    (found,) = read_as(alice, tasks.get_query(alice, uuid.UUID(task_id)))
    assert found.body.encode() == _pydantic(task_row(task_id))


def test_a_whole_second_timestamp_has_no_fraction_as_in_pydantic(
    owner_conn: psycopg.Connection,
    read_as: Callable[..., Any],
    task_row: Callable[..., Any],
    seed: Callable[..., str],
    alice: str,
) -> None:
    task_id = seed(alice)
    with _no_fraction(owner_conn, task_id):
        (found,) = read_as(alice, tasks.get_query(alice, uuid.UUID(task_id)))
    assert found.body.encode() == _pydantic(task_row(task_id))
    assert "." not in json.loads(found.body)["created_at"]


@pytest.mark.parametrize("time_zone", ["Asia/Kolkata", "America/St_Johns", "Europe/London"])
def test_timestamps_follow_the_sessions_time_zone_as_the_rows_do(
    read_as: Callable[..., Any],
    task_row: Callable[..., Any],
    seed: Callable[..., str],
    alice: str,
    time_zone: str,
) -> None:
    task_id = seed(alice)
    (found,) = read_as(alice, tasks.get_query(alice, uuid.UUID(task_id)), time_zone=time_zone)
    assert found.body.encode() == _pydantic(task_row(task_id, time_zone=time_zone))


def test_a_page_is_the_bytes_pydantic_writes_for_its_rows_in_order(
    owner_conn: psycopg.Connection,
    read_as: Callable[..., Any],
    task_row: Callable[..., Any],
    seed: Callable[..., str],
    alice: str,
) -> None:
    ids = [seed(alice, f"task {n} {AWKWARD}") for n in range(3)]
    with _no_fraction(owner_conn, ids[1]):
        query = tasks.list_query(alice, status=StatusFilter.all, sort=SortOrder.title_asc, limit=5)
        (page,) = read_as(alice, query)
    rows = [task_row(task_id) for task_id in ids]
    assert page.body.encode() == TASKS.dump_json(
        TASKS.validate_python(rows, from_attributes=True)
    )


def test_an_empty_page_is_an_empty_array_with_no_position(
    read_as: Callable[..., Any], alice: str
) -> None:
    query = tasks.list_query(alice, status=StatusFilter.all, sort=SortOrder.created_desc, limit=5)
    (page,) = read_as(alice, query)
    assert (page.body, page.fetched, page.last_key, page.last_id) == ("[]", 0, None, None)


def test_a_full_page_reads_one_row_ahead_and_reports_its_last_position(
    read_as: Callable[..., Any], task_row: Callable[..., Any], seed: Callable[..., str], alice: str
) -> None:
    ids = [seed(alice, f"task {n}") for n in range(3)]
    query = tasks.list_query(alice, status=StatusFilter.all, sort=SortOrder.title_asc, limit=2)
    (page,) = read_as(alice, query)
    assert [task["id"] for task in json.loads(page.body)] == ids[:2]
    assert page.fetched == 3
    assert (page.last_key, str(page.last_id)) == ("task 1", ids[1])
    assert page.last_key == task_row(ids[1]).title


def test_the_last_page_reports_no_look_ahead_row(
    read_as: Callable[..., Any], seed: Callable[..., str], alice: str
) -> None:
    for n in range(2):
        seed(alice, f"task {n}")
    query = tasks.list_query(alice, status=StatusFilter.all, sort=SortOrder.title_asc, limit=2)
    (page,) = read_as(alice, query)
    assert page.fetched == 2

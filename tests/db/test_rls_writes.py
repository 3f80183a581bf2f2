"""Writes, proved in SQL as `tasks_app` with no Python filter: no user can touch another's rows.

Refusals are asserted with their exact SQLSTATE and message, so a refusal for the wrong reason
(say, a missing grant instead of the policy) does not pass for the right one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

AsUser = Callable[..., Any]
Seed = Callable[..., str]
RLS_REFUSED = 'new row violates row-level security policy for table "task"'
NOT_GRANTED = "permission denied for table task"


def assert_refused(conn: Any, statement: str, params: tuple[object, ...], message: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        conn.execute(statement, params)
    assert refused.value.sqlstate == "42501"
    assert refused.value.diag.message_primary == message


def row_of(owner_conn: psycopg.Connection, task_id: str) -> tuple[object, ...] | None:
    return owner_conn.execute(
        "SELECT user_id, title, completed FROM task WHERE id = %s", (task_id,)
    ).fetchone()


@pytest.fixture
def bobs_task(seed: Seed, bob: str) -> str:
    return seed(bob, "bob's task")


@pytest.fixture
def alices_task(seed: Seed, alice: str) -> str:
    return seed(alice, "alice's task")


def test_insert_for_another_user_is_refused_by_policy(
    as_user: AsUser, alice: str, bob: str
) -> None:
    with as_user(alice) as conn:
        assert_refused(
            conn, "INSERT INTO task (user_id, title) VALUES (%s, 'x')", (bob,), RLS_REFUSED
        )


def test_insert_for_oneself_is_allowed(
    as_user: AsUser, owner_conn: psycopg.Connection, alice: str, bob: str
) -> None:
    with as_user(alice, commit=True) as conn:
        row = conn.execute(
            "INSERT INTO task (user_id, title) VALUES (%s, 'mine') RETURNING id::text", (alice,)
        ).fetchone()
    assert row is not None
    assert row_of(owner_conn, row[0]) == (alice, "mine", False)
    with as_user(bob) as conn:
        assert conn.execute("SELECT count(*) FROM task WHERE id = %s", (row[0],)).fetchone() == (0,)


def test_update_of_another_users_row_touches_nothing(
    as_user: AsUser,
    owner_conn: psycopg.Connection,
    alices_task: str,
    bobs_task: str,
    alice: str,
    bob: str,
) -> None:
    with as_user(alice, commit=True) as conn:
        changed = conn.execute(
            "UPDATE task SET title = 'taken', completed = true WHERE id = %s", (bobs_task,)
        )
        assert changed.rowcount == 0
    assert row_of(owner_conn, bobs_task) == (bob, "bob's task", False)
    assert row_of(owner_conn, alices_task) == (alice, "alice's task", False)


def test_unfiltered_update_changes_only_own_rows(
    as_user: AsUser,
    owner_conn: psycopg.Connection,
    alices_task: str,
    bobs_task: str,
    alice: str,
    bob: str,
) -> None:
    with as_user(alice, commit=True) as conn:
        assert conn.execute("UPDATE task SET completed = true").rowcount >= 1
    assert row_of(owner_conn, alices_task) == (alice, "alice's task", True)
    assert row_of(owner_conn, bobs_task) == (bob, "bob's task", False)


def test_delete_of_another_users_row_touches_nothing(
    as_user: AsUser,
    owner_conn: psycopg.Connection,
    alices_task: str,
    bobs_task: str,
    alice: str,
    bob: str,
) -> None:
    with as_user(alice, commit=True) as conn:
        assert conn.execute("DELETE FROM task WHERE id = %s", (bobs_task,)).rowcount == 0
    assert row_of(owner_conn, bobs_task) == (bob, "bob's task", False)
    assert row_of(owner_conn, alices_task) == (alice, "alice's task", False)


def test_unfiltered_delete_removes_only_own_rows(
    as_user: AsUser, owner_conn: psycopg.Connection, alices_task: str, bobs_task: str, bob: str
) -> None:
    with as_user(bob, commit=True) as conn:
        assert conn.execute("DELETE FROM task").rowcount >= 1
    assert row_of(owner_conn, bobs_task) is None
    assert row_of(owner_conn, alices_task) is not None


@pytest.mark.parametrize("target", ["other", "self"])
def test_user_id_cannot_be_updated_even_to_oneself(
    as_user: AsUser,
    owner_conn: psycopg.Connection,
    alices_task: str,
    bobs_task: str,
    alice: str,
    bob: str,
    target: str,
) -> None:
    """The column grant refuses it before any policy is asked: a task never changes tenant."""
    new_owner = bob if target == "other" else alice
    with as_user(alice) as conn:
        assert_refused(
            conn,
            "UPDATE task SET user_id = %s WHERE id = %s",
            (new_owner, alices_task),
            NOT_GRANTED,
        )
    assert row_of(owner_conn, alices_task) == (alice, "alice's task", False)
    assert row_of(owner_conn, bobs_task) == (bob, "bob's task", False)


@pytest.mark.parametrize(
    "assignment",
    [
        "id = gen_random_uuid()",
        "created_at = now() - interval '1 day'",
        "updated_at = now() - interval '1 day'",
    ],
    ids=["id", "created_at", "updated_at"],
)
def test_server_maintained_columns_cannot_be_updated(
    as_user: AsUser, alices_task: str, bobs_task: str, alice: str, assignment: str
) -> None:
    with as_user(alice) as conn:
        assert_refused(
            conn, f"UPDATE task SET {assignment} WHERE id = %s", (alices_task,), NOT_GRANTED
        )


def test_ids_cannot_be_chosen_on_insert(as_user: AsUser, bobs_task: str, alice: str) -> None:
    """Choosing an id would let a client probe for (or collide with) another tenant's task."""
    with as_user(alice) as conn:
        assert_refused(
            conn,
            "INSERT INTO task (id, user_id, title) VALUES (%s, %s, 'x')",
            (bobs_task, alice),
            NOT_GRANTED,
        )


def test_truncate_is_refused(
    as_user: AsUser, owner_conn: psycopg.Connection, alices_task: str, bobs_task: str, alice: str
) -> None:
    """TRUNCATE ignores row-level security, so the runtime role must not hold it at all."""
    with as_user(alice) as conn:
        assert_refused(conn, "TRUNCATE task", (), NOT_GRANTED)
    assert row_of(owner_conn, bobs_task) is not None
    assert row_of(owner_conn, alices_task) is not None

"""Default deny, proved in SQL as `tasks_app` with no Python filter: no identity, no rows.

A transaction that never set `app.user_id`, set it empty, or inherited a pooled connection whose
earlier transaction set it, must neither see nor write any tenant's row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.support.identity import act_as

AsUser = Callable[..., Any]
Seed = Callable[..., str]
RLS_INSERT_REFUSED = 'new row violates row-level security policy for table "task"'


@pytest.fixture
def two_tenants(seed: Seed, alice: str, bob: str) -> tuple[str, str]:
    """One task each for alice and bob, written by the owner; returns their ids."""
    return seed(alice, "alice's task"), seed(bob, "bob's task")


@pytest.mark.parametrize("identity", [None, ""], ids=["unset", "empty"])
def test_without_identity_no_row_is_visible(
    as_user: AsUser, two_tenants: tuple[str, str], identity: str | None
) -> None:
    with as_user(identity) as conn:
        assert conn.execute("SELECT count(*) FROM task").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM task WHERE id = ANY(%s::uuid[])", (list(two_tenants),)
        ).fetchone() == (0,)


@pytest.mark.parametrize("identity", [None, ""], ids=["unset", "empty"])
def test_without_identity_an_insert_is_refused_by_policy(
    as_user: AsUser, alice: str, bob: str, identity: str | None
) -> None:
    for owner in (alice, bob):
        with as_user(identity) as conn, pytest.raises(errors.InsufficientPrivilege) as refused:
            conn.execute("INSERT INTO task (user_id, title) VALUES (%s, 'x')", (owner,))
        assert refused.value.sqlstate == "42501"
        assert refused.value.diag.message_primary == RLS_INSERT_REFUSED


@pytest.mark.parametrize("identity", [None, ""], ids=["unset", "empty"])
def test_without_identity_updates_and_deletes_touch_nothing(
    as_user: AsUser,
    owner_conn: psycopg.Connection,
    two_tenants: tuple[str, str],
    identity: str | None,
) -> None:
    ids = list(two_tenants)
    with as_user(identity, commit=True) as conn:
        assert (
            conn.execute(
                "UPDATE task SET title = 'taken' WHERE id = ANY(%s::uuid[])", (ids,)
            ).rowcount
            == 0
        )
        assert conn.execute("DELETE FROM task WHERE id = ANY(%s::uuid[])", (ids,)).rowcount == 0
    titles = owner_conn.execute(
        "SELECT title FROM task WHERE id = ANY(%s::uuid[]) ORDER BY title", (ids,)
    ).fetchall()
    assert titles == [("alice's task",), ("bob's task",)]


def test_identity_from_an_earlier_transaction_does_not_carry_over(
    database_url: str, two_tenants: tuple[str, str], alice: str
) -> None:
    """What a pooled connection looks like to the next request: SET LOCAL died with the commit."""
    with psycopg.connect(database_url) as conn:
        act_as(conn, alice)
        assert conn.execute("SELECT count(*) FROM task").fetchone() == (1,)
        conn.commit()
        act_as(conn, None)
        leftover = conn.execute("SELECT current_setting('app.user_id', true)").fetchone()
        assert leftover is not None and leftover[0] in (None, "")
        assert conn.execute("SELECT count(*) FROM task").fetchone() == (0,)
        conn.rollback()

"""Reads, proved in SQL as `tasks_app` with no Python filter: each user sees only their own rows.

Every query here is deliberately unfiltered (`SELECT ... FROM task`): only the policies stand
between one tenant and the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

AsUser = Callable[..., Any]
Seed = Callable[..., str]


@pytest.fixture
def tasks_of(seed: Seed, alice: str, bob: str) -> dict[str, set[str]]:
    """Two tasks each for alice and bob, written by the owner."""
    return {user: {seed(user, f"{user} {n}") for n in range(2)} for user in (alice, bob)}


def visible_ids(conn: Any) -> set[str]:
    return {row[0] for row in conn.execute("SELECT id::text FROM task").fetchall()}


def test_each_user_sees_exactly_their_own_rows(
    as_user: AsUser, tasks_of: dict[str, set[str]]
) -> None:
    for user, own in tasks_of.items():
        with as_user(user) as conn:
            assert visible_ids(conn) == own


def test_another_users_row_is_invisible_by_id(
    as_user: AsUser, tasks_of: dict[str, set[str]], alice: str, bob: str
) -> None:
    with as_user(bob) as conn:
        found = conn.execute(
            "SELECT id FROM task WHERE id = ANY(%s::uuid[])", (list(tasks_of[alice]),)
        ).fetchall()
    assert found == []


def test_filtering_on_another_users_id_returns_nothing(
    as_user: AsUser, tasks_of: dict[str, set[str]], alice: str, bob: str
) -> None:
    with as_user(bob) as conn:
        assert conn.execute(
            "SELECT count(*) FROM task WHERE user_id = %s", (alice,)
        ).fetchone() == (0,)


def test_aggregates_count_only_own_rows(
    as_user: AsUser, tasks_of: dict[str, set[str]], alice: str
) -> None:
    with as_user(alice) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT user_id) FROM task").fetchone() == (
            2,
            1,
        )


def test_switching_identity_switches_the_visible_rows(
    as_user: AsUser, tasks_of: dict[str, set[str]], alice: str, bob: str
) -> None:
    """The setting, not the connection, decides: another user's id shows only that user's rows."""
    with as_user(alice) as conn:
        conn.execute("SELECT set_config('app.user_id', %s, true)", (bob,))
        assert visible_ids(conn) == tasks_of[bob]

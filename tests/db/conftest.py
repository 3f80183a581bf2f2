"""SQL-level fixtures: act as `tasks_app` directly, with no Python filter in the way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tests.support.identity import act_as


@pytest.fixture
def as_user(database_url: str) -> Iterator[Callable[..., object]]:
    """`with as_user('alice') as conn:` runs SQL as tasks_app with app.user_id='alice'.

    `as_user(None)` switches role without setting an identity. The transaction is rolled back
    at the end unless `commit=True`.
    """
    conns: list[psycopg.Connection] = []

    @contextmanager
    def open_as(user_id: str | None, *, commit: bool = False) -> Iterator[psycopg.Connection]:
        conn = psycopg.connect(database_url)
        conns.append(conn)
        act_as(conn, user_id)
        try:
            yield conn
            if commit:
                conn.commit()
        finally:
            conn.rollback()
            conn.close()

    yield open_as
    for conn in conns:
        conn.close()


@pytest.fixture
def seed(owner_conn: psycopg.Connection) -> Callable[[str, str], str]:
    """Insert a task as the owner role (bypassing the API) and return its id."""

    def insert(user_id: str, title: str = "seeded") -> str:
        row = owner_conn.execute(
            "INSERT INTO task (user_id, title) VALUES (%s, %s) RETURNING id::text",
            (user_id, title),
        ).fetchone()
        assert row is not None
        return str(row[0])

    return insert

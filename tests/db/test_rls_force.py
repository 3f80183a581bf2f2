"""FORCE ROW LEVEL SECURITY, proved in SQL: the policies bind the table's owner as well.

The owner normally bypasses its own table's policies; FORCE is what keeps a deployment that
(wrongly) serves as the owner isolated. Each test hands ownership to `tasks_app` inside a
transaction that is always rolled back, so nothing outlives the test and no role changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from tests.support.identity import act_as

Seed = Callable[..., str]


@contextmanager
def as_table_owner(database_url: str, user_id: str | None) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as conn:
        conn.execute("SET LOCAL lock_timeout = '5s'")
        conn.execute("ALTER TABLE task OWNER TO tasks_app")
        act_as(conn, user_id)
        owner = conn.execute("SELECT relowner::regrole::text FROM pg_class WHERE relname = 'task'")
        assert owner.fetchone() == ("tasks_app",)
        try:
            yield conn
        finally:
            conn.rollback()


def test_the_table_owner_sees_no_row_without_identity(
    seed: Seed, alice: str, bob: str, database_url: str
) -> None:
    ids = [seed(alice), seed(bob)]
    with as_table_owner(database_url, None) as conn:
        visible = conn.execute("SELECT count(*) FROM task WHERE id = ANY(%s::uuid[])", (ids,))
        assert visible.fetchone() == (0,)


def test_the_table_owner_sees_only_the_identified_users_rows(
    seed: Seed, alice: str, bob: str, database_url: str
) -> None:
    alices, bobs = seed(alice), seed(bob)
    with as_table_owner(database_url, alice) as conn:
        rows = conn.execute(
            "SELECT id::text FROM task WHERE id = ANY(%s::uuid[])", ([alices, bobs],)
        ).fetchall()
    assert {r[0] for r in rows} == {alices}

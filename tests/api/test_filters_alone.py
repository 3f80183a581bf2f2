"""Layer 2 alone: the HTTP isolation suite, unchanged, against a database with RLS removed.

The fixture below gives this module its own throwaway database, migrated to head and then
stripped of every tenant table's policies, FORCE and ENABLE. Only the `user_id` filters in the
handlers' queries (db/tasks.py, db/idempotency.py) remain, and the suite must still pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from db.catalog import TENANT_TABLES
from tests.api import test_isolation
from tests.support.identity import act_as
from tests.support.postgres import throwaway_database


def strip_row_level_security(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in TENANT_TABLES:
            policies = conn.execute(
                "SELECT policyname FROM pg_policies WHERE tablename = %s", (table,)
            ).fetchall()
            for (policy,) in policies:
                conn.execute(
                    sql.SQL("DROP POLICY {} ON {}").format(
                        sql.Identifier(policy), sql.Identifier(table)
                    )
                )
            conn.execute(
                sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(sql.Identifier(table))
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(sql.Identifier(table))
            )


@pytest.fixture(scope="module")
def database_url(admin_url: str) -> Iterator[str]:
    """Overrides the session database for this module: same schema, no row-level security."""
    with throwaway_database(admin_url, prefix="tasks_norls") as url:
        strip_row_level_security(url)
        yield url


def test_this_database_enforces_no_row_level_security(
    owner_conn: psycopg.Connection, alice: str, bob: str
) -> None:
    """Without this, the suite below would prove nothing about the filters."""
    flags = owner_conn.execute(
        "SELECT bool_or(relrowsecurity), bool_or(relforcerowsecurity) FROM pg_class"
        " WHERE relname = ANY(%s)",
        (list(TENANT_TABLES),),
    ).fetchone()
    assert flags == (False, False)
    assert owner_conn.execute(
        "SELECT count(*) FROM pg_policies WHERE tablename = ANY(%s)", (list(TENANT_TABLES),)
    ).fetchone() == (0,)
    owner_conn.execute("INSERT INTO task (user_id, title) VALUES (%s, 'visible to all')", (bob,))
    with owner_conn.transaction():
        act_as(owner_conn, alice)
        seen = owner_conn.execute("SELECT count(*) FROM task WHERE user_id = %s", (bob,))
        assert seen.fetchone() == (1,)


class TestTwoUsersStayApartWithFiltersAlone(test_isolation.TestTwoUsersStayApart):
    """Every test of tests/api/test_isolation.py, on the database above."""

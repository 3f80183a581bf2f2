"""Fixtures for the live proof: a database to break, and a way to prove it left no trace.

Breakage happens on a throwaway database of this package, inside a transaction rolled back
after the test (prove runs in savepoints, so it judges the uncommitted state), never on the
session's shared database. Role-altering tests get their own embedded cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from db.migrate import upgrade_to_head
from db.prove import Proof, run_proof
from tests.support.postgres import embedded_cluster, throwaway_database

OWN = "user_id = (select nullif(current_setting('app.user_id', true), ''))"

# Everything a run could leave behind: rows (real tenants' included), catalog, roles.
_STATE = {
    "rows": "SELECT 'task', count(*) FROM task UNION ALL "
    "SELECT 'idempotency_key', count(*) FROM idempotency_key",
    "row_versions": "SELECT string_agg(xmin::text || ctid::text, ',' ORDER BY id) FROM task",
    "relations": "SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, "
    "c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
    "columns": "SELECT attrelid::regclass::text, attname, attacl::text FROM pg_attribute "
    "WHERE attrelid IN ('task'::regclass, 'idempotency_key'::regclass) ORDER BY 1, 2",
    "policies": "SELECT * FROM pg_policies ORDER BY schemaname, tablename, policyname",
    "schemas": "SELECT nspname FROM pg_namespace ORDER BY 1",
    "roles": "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin, rolinherit "
    "FROM pg_roles ORDER BY 1",
    "memberships": "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members "
    "ORDER BY 1, 2",
}


def database_state(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Read as a superuser, so the row counts include every tenant's rows."""
    return {name: conn.execute(query).fetchall() for name, query in _STATE.items()}


def seed_real_tenants(url: str) -> None:
    """Two real tenants' rows, committed, which the proof must neither see nor change."""
    with psycopg.connect(url, autocommit=True) as conn:
        for user in ("real-alice", "real-bob"):
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('role', 'tasks_app', true),"
                    " set_config('app.user_id', %s, true)",
                    [user],
                )
                conn.execute("INSERT INTO task (user_id, title) VALUES (%s, 'real task')", [user])


@pytest.fixture(scope="session")
def prove_db(admin_url: str) -> Iterator[str]:
    """A migrated database only the prove tests break (never committed), with real rows."""
    with throwaway_database(admin_url, prefix="tasks_prove") as url:
        seed_real_tenants(url)
        yield url


@pytest.fixture
def conn(prove_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection in an open transaction that is rolled back after the test."""
    with psycopg.connect(prove_db, prepare_threshold=None) as connection:
        yield connection
        connection.rollback()


@pytest.fixture(scope="session")
def private_admin_url() -> Iterator[str]:
    """A private cluster: these tests create roles, which are cluster-wide."""
    with embedded_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def non_superuser_owner_url(private_admin_url: str) -> Iterator[str]:
    """Like Neon's owner: logs in, owns the database and its tables, is a member of tasks_app,
    and is no superuser. On a private cluster, because roles are cluster-wide."""
    with psycopg.connect(private_admin_url, autocommit=True) as admin:
        admin.execute("CREATE ROLE app_owner LOGIN CREATEDB CREATEROLE NOSUPERUSER")
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER app_owner").format(sql.Identifier("owned")))
    owner_url = make_url(private_admin_url).set(username="app_owner", database="owned")
    url = owner_url.render_as_string(hide_password=False)
    upgrade_to_head(url)
    yield url


@pytest.fixture(scope="session")
def outsider_url(private_admin_url: str, non_superuser_owner_url: str) -> str:
    """A login role that may connect to the owner's database but is no member of tasks_app."""
    with psycopg.connect(private_admin_url, autocommit=True) as admin:
        admin.execute("CREATE ROLE outsider LOGIN NOSUPERUSER")
    return (
        make_url(non_superuser_owner_url)
        .set(username="outsider")
        .render_as_string(hide_password=False)
    )


def prove_leaving_no_trace(conn: psycopg.Connection[Any]) -> Proof:
    """Run the proof and check it changed nothing the connection can see."""
    before = database_state(conn)
    proof = run_proof(conn)
    assert database_state(conn) == before
    return proof


def holes(proof: Proof) -> set[tuple[str, str, str]]:
    return {(c.table, c.command, c.identity) for c in proof.violations}

"""The proof is quiet on a correctly migrated database, wherever and however it connects,
and leaves the database exactly as it found it."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from db.catalog import tenant_tables
from db.prove import Access, prove_database, run_proof
from db.prove.matrix import COMMANDS, IDENTITIES
from tests.pooler.pgbouncer import pgbouncer
from tests.prove.conftest import database_state, prove_leaving_no_trace


def test_prove_finds_no_violation_on_the_migrated_database(database_url: str) -> None:
    assert prove_database(database_url).violations == ()


def test_every_tenant_table_gets_a_cell_per_command_and_identity(database_url: str) -> None:
    proof = prove_database(database_url)
    with psycopg.connect(database_url) as conn:
        tables = {f"public.{t}" for t in tenant_tables(conn)}
    assert sorted((c.table, c.command, c.identity) for c in proof.cells) == sorted(
        (t, command, identity) for t in tables for command in COMMANDS for identity in IDENTITIES
    )


def test_no_cell_is_left_untested_on_the_migrated_database(database_url: str) -> None:
    assert {c.actual for c in prove_database(database_url).cells} <= {
        Access.ALLOWED,
        Access.DENIED,
    }


def test_the_owner_may_only_what_a_declared_policy_and_grant_allow(database_url: str) -> None:
    """idempotency_key declares no UPDATE policy or grant: its owner may not update it."""
    own = {
        (c.table, c.command)
        for c in prove_database(database_url).cells
        if c.identity == "own" and c.expected is Access.ALLOWED
    }
    assert ("public.task", "update") in own
    assert ("public.idempotency_key", "update") not in own
    assert not any(command == "update-owner" for _, command in own)


def test_the_proof_leaves_rows_catalog_and_roles_as_it_found_them(
    conn: psycopg.Connection[Any],
) -> None:
    prove_leaving_no_trace(conn)


def test_the_proof_commits_nothing_a_second_connection_could_see(prove_db: str) -> None:
    with psycopg.connect(prove_db, autocommit=True) as observer:
        before = database_state(observer)
        prove_database(prove_db)
        assert database_state(observer) == before


def test_the_proof_ends_its_transaction(prove_db: str) -> None:
    with psycopg.connect(prove_db, autocommit=True) as conn:
        run_proof(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_prove_works_through_a_transaction_mode_pooler(database_url: str) -> None:
    with pgbouncer(database_url) as pooler:
        proof = prove_database(pooler.url)
    assert proof.cells and proof.violations == ()


def test_prove_runs_as_a_non_superuser_owner(non_superuser_owner_url: str) -> None:
    with psycopg.connect(non_superuser_owner_url) as conn:
        row = conn.execute(
            "SELECT rolsuper, pg_has_role(current_user, 'tasks_app', 'MEMBER'),"
            " (SELECT tableowner FROM pg_tables WHERE tablename = 'task') = current_user"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (False, True, True)
    assert prove_database(non_superuser_owner_url).violations == ()


def test_a_run_as_a_non_superuser_owner_leaves_rows_catalog_and_roles_unchanged(
    non_superuser_owner_url: str, private_admin_url: str
) -> None:
    observer_url = (
        make_url(private_admin_url).set(database="owned").render_as_string(hide_password=False)
    )
    with psycopg.connect(observer_url, autocommit=True) as observer:
        before = database_state(observer)
        prove_database(non_superuser_owner_url)
        assert database_state(observer) == before

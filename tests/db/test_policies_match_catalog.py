"""The migrated catalog enforces exactly what policies/ declares (policies, RLS flags, grants)."""

from __future__ import annotations

import psycopg

from db.catalog import declared_snapshot, policy_files, snapshot


def test_policy_files_exist_one_per_concern() -> None:
    names = [p.name for p in policy_files()]
    assert names == ["00_roles.sql", "10_privileges.sql", "idempotency_key.sql", "task.sql"]


def test_each_policy_file_opens_with_its_invariant() -> None:
    for path in policy_files():
        assert path.read_text().startswith("-- Invariant:"), path.name


def test_migrated_catalog_equals_policies_directory(owner_conn: psycopg.Connection) -> None:
    live = snapshot(owner_conn)
    declared = declared_snapshot(owner_conn)
    assert live.differences(declared) == []
    assert live == declared


def test_snapshot_sees_every_command_policy(owner_conn: psycopg.Connection) -> None:
    live = snapshot(owner_conn)
    assert {(p[1], p[4]) for p in live.policies} == {
        ("task_select_own", "SELECT"),
        ("task_insert_own", "INSERT"),
        ("task_update_own", "UPDATE"),
        ("task_delete_own", "DELETE"),
        ("idempotency_key_select_own", "SELECT"),
        ("idempotency_key_insert_own", "INSERT"),
        ("idempotency_key_delete_own", "DELETE"),
    }
    assert all(p[3] == ("tasks_app",) for p in live.policies)
    assert live.rls_flags == (("idempotency_key", True, True), ("task", True, True))


def test_comparison_covers_the_idempotency_key_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        declared = declared_snapshot(conn)
        conn.execute("ALTER TABLE idempotency_key NO FORCE ROW LEVEL SECURITY")
        conn.execute("GRANT UPDATE (response_body) ON idempotency_key TO tasks_app")
        live = snapshot(conn)
        conn.rollback()
    differences = live.differences(declared)
    assert any("idempotency_key" in line and "rls_flags" in line for line in differences)
    assert any("response_body" in line and "UPDATE" in line for line in differences)


def test_comparison_detects_a_dropped_policy(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        declared = declared_snapshot(conn)
        conn.execute("DROP POLICY task_delete_own ON task")
        live = snapshot(conn)
        conn.rollback()
    differences = live.differences(declared)
    assert any("task_delete_own" in line for line in differences)


def test_comparison_detects_a_widened_grant(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        declared = declared_snapshot(conn)
        conn.execute("GRANT TRUNCATE, UPDATE (user_id) ON task TO tasks_app")
        live = snapshot(conn)
        conn.rollback()
    differences = live.differences(declared)
    assert any("TRUNCATE" in line for line in differences)
    assert any("user_id" in line and "UPDATE" in line for line in differences)


def test_runtime_role_attributes_are_least_privilege(owner_conn: psycopg.Connection) -> None:
    row = owner_conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreatedb, rolcreaterole"
        " FROM pg_roles WHERE rolname = 'tasks_app'"
    ).fetchone()
    assert row == (False, False, False, False, False)


def test_runtime_role_owns_no_tenant_table(owner_conn: psycopg.Connection) -> None:
    owners = owner_conn.execute(
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class"
        " WHERE oid IN ('task'::regclass, 'idempotency_key'::regclass)"
    ).fetchall()
    assert len(owners) == 2
    assert all(owner != "tasks_app" for _, owner in owners)

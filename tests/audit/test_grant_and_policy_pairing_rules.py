"""Rules for breakages only drift used to explain: a command without its policy or its
privilege, keys and timestamps a caller may choose, PUBLIC grants, a missing tenant table."""

from __future__ import annotations

import psycopg

from db.audit import Severity
from tests.audit.conftest import assert_fix_repairs, findings_of, only_finding


def test_granted_command_without_policy_fires_when_one_policy_is_dropped(
    conn: psycopg.Connection,
) -> None:
    conn.execute("DROP POLICY task_update_own ON task")
    finding = only_finding(conn, "granted_command_without_policy")
    assert (finding.object, finding.severity) == (
        "public.task UPDATE for tasks_app",
        Severity.WARN,
    )
    assert_fix_repairs(conn, finding)


def test_granted_command_without_policy_repairs_to_what_policies_declare(
    conn: psycopg.Connection,
) -> None:
    conn.execute("DROP POLICY task_update_own ON task")
    conn.execute(only_finding(conn, "granted_command_without_policy").fix.encode())
    assert findings_of(conn, "drift") == []


def test_granted_command_without_policy_is_quiet_for_a_command_not_granted(
    conn: psycopg.Connection,
) -> None:
    """idempotency_key has neither an UPDATE grant nor an UPDATE policy: as declared."""
    found = findings_of(conn, "granted_command_without_policy")
    assert [f for f in found if "idempotency_key" in f.object] == []


def test_policy_command_not_granted_fires_when_the_privilege_is_revoked(
    conn: psycopg.Connection,
) -> None:
    conn.execute("REVOKE DELETE ON task FROM tasks_app")
    finding = only_finding(conn, "policy_command_not_granted")
    assert (finding.object, finding.severity) == (
        "policy task_delete_own on public.task",
        Severity.WARN,
    )
    assert_fix_repairs(conn, finding)


def test_insert_of_server_generated_column_is_an_error_for_a_key(
    conn: psycopg.Connection,
) -> None:
    conn.execute("GRANT INSERT (id) ON task TO tasks_app")
    finding = only_finding(conn, "insert_of_server_generated_column")
    assert (finding.object, finding.severity) == ("public.task (id)", Severity.ERROR)
    assert "unique violation" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_insert_of_server_generated_column_is_a_warning_for_a_timestamp(
    conn: psycopg.Connection,
) -> None:
    conn.execute("GRANT INSERT (created_at) ON task TO tasks_app")
    finding = only_finding(conn, "insert_of_server_generated_column")
    assert (finding.object, finding.severity) == ("public.task (created_at)", Severity.WARN)
    assert_fix_repairs(conn, finding)


def test_insert_of_server_generated_column_leaves_the_declared_inserts_alone(
    conn: psycopg.Connection,
) -> None:
    conn.execute("GRANT INSERT (created_at) ON task TO tasks_app")
    conn.execute(only_finding(conn, "insert_of_server_generated_column").fix.encode())
    assert findings_of(conn, "drift") == []


def test_tenant_table_granted_to_public_fires_on_a_public_select(
    conn: psycopg.Connection,
) -> None:
    conn.execute("GRANT SELECT ON task TO PUBLIC")
    finding = only_finding(conn, "tenant_table_granted_to_public")
    assert (finding.object, finding.severity) == ("public.task SELECT to PUBLIC", Severity.WARN)
    assert_fix_repairs(conn, finding)


def test_tenant_table_granted_to_public_leaves_truncate_to_excess_table_privilege(
    conn: psycopg.Connection,
) -> None:
    conn.execute("GRANT TRUNCATE ON task TO PUBLIC")
    assert findings_of(conn, "tenant_table_granted_to_public") == []


def test_declared_tenant_table_missing_fires_when_a_tenant_table_is_dropped(
    conn: psycopg.Connection,
) -> None:
    conn.execute("DROP TABLE task CASCADE")
    finding = only_finding(conn, "declared_tenant_table_missing")
    assert (finding.object, finding.severity) == ("public.task", Severity.WARN)

"""The runtime-role rules, on a private cluster: role changes there are cluster-wide.

Each test alters `tasks_app` (or grants it a role) inside a transaction that is rolled back, so
even the private cluster is left as it was.
"""

from __future__ import annotations

import psycopg

from db.audit import Severity
from tests.audit.conftest import assert_fix_repairs, findings_of, only_finding


def test_runtime_role_superuser_fires(private_conn: psycopg.Connection) -> None:
    private_conn.execute("ALTER ROLE tasks_app SUPERUSER")
    finding = only_finding(private_conn, "runtime_role_superuser")
    assert (finding.object, finding.severity) == ("role tasks_app", Severity.ERROR)
    assert_fix_repairs(private_conn, finding)


def test_runtime_role_bypassrls_fires(private_conn: psycopg.Connection) -> None:
    private_conn.execute("ALTER ROLE tasks_app BYPASSRLS")
    finding = only_finding(private_conn, "runtime_role_bypassrls")
    assert (finding.object, finding.severity) == ("role tasks_app", Severity.ERROR)
    assert_fix_repairs(private_conn, finding)


def test_member_of_privileged_fires_for_a_superuser_two_memberships_away(
    private_conn: psycopg.Connection,
) -> None:
    private_conn.execute("CREATE ROLE platform_admin SUPERUSER NOLOGIN")
    private_conn.execute("CREATE ROLE support NOLOGIN")
    private_conn.execute("GRANT platform_admin TO support")
    private_conn.execute("GRANT support TO tasks_app")
    finding = only_finding(private_conn, "runtime_role_member_of_privileged")
    assert finding.object == "role tasks_app -> support -> platform_admin"
    assert "is a superuser" in finding.explanation
    assert finding.fix == "REVOKE support FROM tasks_app;"
    assert_fix_repairs(private_conn, finding)


def test_member_of_privileged_fires_for_a_bypassrls_role(private_conn: psycopg.Connection) -> None:
    private_conn.execute("CREATE ROLE analytics BYPASSRLS NOLOGIN")
    private_conn.execute("GRANT analytics TO tasks_app")
    finding = only_finding(private_conn, "runtime_role_member_of_privileged")
    assert "has BYPASSRLS" in finding.explanation
    assert_fix_repairs(private_conn, finding)


def test_member_of_privileged_fires_for_the_owner_of_a_tenant_table(
    private_conn: psycopg.Connection,
) -> None:
    private_conn.execute("CREATE ROLE schema_owner NOLOGIN")
    private_conn.execute("ALTER TABLE task OWNER TO schema_owner")
    private_conn.execute("GRANT schema_owner TO tasks_app")
    finding = only_finding(private_conn, "runtime_role_member_of_privileged")
    assert finding.object == "role tasks_app -> schema_owner"
    assert "owns task" in finding.explanation
    assert_fix_repairs(private_conn, finding)


def test_role_rules_are_quiet_on_the_private_migrated_cluster(
    private_conn: psycopg.Connection,
) -> None:
    for rule in (
        "runtime_role_superuser",
        "runtime_role_bypassrls",
        "runtime_role_owns_objects",
        "runtime_role_member_of_privileged",
    ):
        assert findings_of(private_conn, rule) == [], rule

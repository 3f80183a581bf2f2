"""Role attributes and memberships beyond superuser and BYPASSRLS, each its own hole. Roles are
cluster-wide: these run on the private cluster, and each change is rolled back."""

from __future__ import annotations

import psycopg

from db.audit import Severity
from tests.audit.conftest import assert_fix_repairs, findings_of, only_finding


def test_runtime_role_can_log_in_fires_on_login(private_conn: psycopg.Connection) -> None:
    private_conn.execute("ALTER ROLE tasks_app LOGIN")
    finding = only_finding(private_conn, "runtime_role_can_log_in")
    assert (finding.object, finding.severity) == ("role tasks_app", Severity.ERROR)
    assert "without a token" in finding.explanation
    assert_fix_repairs(private_conn, finding)


def test_runtime_role_can_escalate_is_an_error_for_createrole(
    private_conn: psycopg.Connection,
) -> None:
    private_conn.execute("ALTER ROLE tasks_app CREATEROLE")
    finding = only_finding(private_conn, "runtime_role_can_escalate")
    assert (finding.object, finding.severity) == ("role tasks_app CREATEROLE", Severity.ERROR)
    assert_fix_repairs(private_conn, finding)


def test_runtime_role_can_escalate_is_a_warning_for_createdb(
    private_conn: psycopg.Connection,
) -> None:
    private_conn.execute("ALTER ROLE tasks_app CREATEDB")
    finding = only_finding(private_conn, "runtime_role_can_escalate")
    assert (finding.object, finding.severity) == ("role tasks_app CREATEDB", Severity.WARN)
    assert_fix_repairs(private_conn, finding)


def test_inherits_undeclared_role_fires_on_a_plain_membership(
    private_conn: psycopg.Connection,
) -> None:
    private_conn.execute("CREATE ROLE reporting NOLOGIN")
    private_conn.execute("GRANT reporting TO tasks_app")
    finding = only_finding(private_conn, "runtime_role_inherits_undeclared_role")
    assert (finding.object, finding.severity) == (
        "role tasks_app member of reporting",
        Severity.WARN,
    )
    assert_fix_repairs(private_conn, finding)


def test_attribute_rules_are_quiet_on_the_private_migrated_cluster(
    private_conn: psycopg.Connection,
) -> None:
    for rule in (
        "runtime_role_can_log_in",
        "runtime_role_can_escalate",
        "runtime_role_inherits_undeclared_role",
    ):
        assert findings_of(private_conn, rule) == []

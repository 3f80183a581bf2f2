"""The drift rule: any difference between the live catalog and policies/ is a finding.

Its declared side is policies/ applied to scratch copies in a rolled-back savepoint, so these
tests can break the live side inside their own transaction and still compare.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from db import catalog
from db.audit import run_audit
from db.audit.rules import BY_ID
from db.catalog import RoleAttributes, declared_role
from tests.audit.conftest import assert_fix_repairs, findings_of, only_finding


def test_drift_fires_when_a_policy_expression_changes(conn: psycopg.Connection) -> None:
    conn.execute("ALTER POLICY task_delete_own ON task USING (user_id IS NOT NULL)")
    finding = only_finding(conn, "drift")
    assert finding.object == "policy task_delete_own on public.task"
    assert "differs" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_drift_fires_when_a_declared_policy_is_missing(conn: psycopg.Connection) -> None:
    conn.execute("DROP POLICY task_update_own ON task")
    finding = only_finding(conn, "drift")
    assert finding.object == "policy task_update_own on public.task"
    assert "missing live" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_drift_fires_when_a_column_grant_is_added(conn: psycopg.Connection) -> None:
    conn.execute("GRANT INSERT (created_at) ON task TO tasks_app")
    finding = only_finding(conn, "drift")
    assert finding.object == "public.task.created_at INSERT to tasks_app"
    assert_fix_repairs(conn, finding)


def test_drift_fires_when_a_declared_grant_is_revoked(conn: psycopg.Connection) -> None:
    conn.execute("REVOKE DELETE ON task FROM tasks_app")
    finding = only_finding(conn, "drift")
    assert finding.object == "public.task DELETE to tasks_app"
    assert "not granted live" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_drift_fires_on_a_grant_to_public(conn: psycopg.Connection) -> None:
    conn.execute("GRANT SELECT ON task TO PUBLIC")
    finding = only_finding(conn, "drift")
    assert finding.object == "public.task SELECT to PUBLIC"
    assert_fix_repairs(conn, finding)


def test_drift_fires_when_rls_flags_differ(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE task NO FORCE ROW LEVEL SECURITY")
    finding = only_finding(conn, "drift")
    assert finding.object == "public.task"
    assert "forced=False" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_drift_reports_policies_that_no_longer_apply(conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE task CASCADE")
    finding = only_finding(conn, "drift")
    assert "policies/ cannot be applied" in finding.explanation
    assert 'relation "task" does not exist' in finding.explanation


def test_drift_fires_on_a_role_attribute(private_conn: psycopg.Connection) -> None:
    private_conn.execute("ALTER ROLE tasks_app LOGIN CREATEDB")
    finding = only_finding(private_conn, "drift")
    assert finding.object == "role tasks_app"
    assert_fix_repairs(private_conn, finding)


def test_drift_fires_on_an_undeclared_membership(private_conn: psycopg.Connection) -> None:
    private_conn.execute("CREATE ROLE reporting NOLOGIN")
    private_conn.execute("GRANT reporting TO tasks_app")
    finding = only_finding(private_conn, "drift")
    assert finding.object == "role tasks_app member of reporting"
    assert_fix_repairs(private_conn, finding)


def test_declared_role_is_read_from_the_roles_file() -> None:
    attributes, memberships = declared_role()
    assert attributes == RoleAttributes(False, False, False, False, False, False)
    assert memberships == ()


def test_drift_is_quiet_when_the_live_catalog_matches(conn: psycopg.Connection) -> None:
    assert findings_of(conn, "drift") == []


def test_drift_is_an_audit_error_when_policies_are_not_on_disk(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "POLICIES_DIR", tmp_path)
    report = run_audit(conn, rules=[BY_ID["drift"]])
    assert report.findings == ()
    assert [e.rule for e in report.errors] == ["drift"]
    assert "no policies/*.sql found" in report.errors[0].message


def test_a_role_that_cannot_create_the_scratch_schema_gets_an_error_not_a_verdict(
    private_conn: psycopg.Connection,
) -> None:
    private_conn.execute("CREATE ROLE catalog_reader NOLOGIN")
    private_conn.execute("SET LOCAL ROLE catalog_reader")
    report = run_audit(private_conn)
    assert report.findings == ()
    assert [e.rule for e in report.errors] == ["drift"]
    assert "permission denied" in report.errors[0].message

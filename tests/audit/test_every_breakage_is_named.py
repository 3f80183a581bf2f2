"""Every breakage the suite knows is explained by a rule that names its hole, not only by drift.

drift proves the catalog differs from policies/; a DBA also needs to read what the difference
lets through. The breakages are the mutation sweep's database removals plus the drift tests'.
"""

from __future__ import annotations

import psycopg
import pytest

from db.audit import run_audit
from tests.mutation.protections import PROTECTIONS

TABLE_BREAKAGES = [p.remove_sql for p in PROTECTIONS if p.layer == "rls"] + [
    # tests/audit/test_drift_rule.py
    "ALTER POLICY task_delete_own ON task USING (user_id IS NOT NULL)",
    "DROP POLICY task_update_own ON task",
    "GRANT INSERT (created_at) ON task TO tasks_app",
    "REVOKE DELETE ON task FROM tasks_app",
    "GRANT SELECT ON task TO PUBLIC",
    "ALTER TABLE task NO FORCE ROW LEVEL SECURITY",
    "DROP TABLE task CASCADE",
]
ROLE_BREAKAGES = [
    ["ALTER ROLE tasks_app LOGIN CREATEDB"],
    ["CREATE ROLE reporting NOLOGIN", "GRANT reporting TO tasks_app"],
]


def named_rules(conn: psycopg.Connection) -> set[str]:
    report = run_audit(conn)
    assert report.errors == ()
    return {f.rule for f in report.findings} - {"drift"}


@pytest.mark.parametrize("statement", TABLE_BREAKAGES)
def test_a_table_breakage_is_named_by_a_rule_besides_drift(
    conn: psycopg.Connection, statement: str
) -> None:
    conn.execute(statement)
    assert named_rules(conn)


@pytest.mark.parametrize("statements", ROLE_BREAKAGES, ids=lambda s: s[-1])
def test_a_role_breakage_is_named_by_a_rule_besides_drift(
    private_conn: psycopg.Connection, statements: list[str]
) -> None:
    for statement in statements:
        private_conn.execute(statement)
    assert named_rules(private_conn)

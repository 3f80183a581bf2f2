"""Each table and policy rule fires on a database broken in exactly its way, and its fix works.

Every test breaks the migrated schema inside a transaction (rolled back afterwards), audits the
uncommitted state, then applies the finding's fix SQL and checks the rule falls quiet.
"""

from __future__ import annotations

import psycopg

from db.audit import Severity
from tests.audit.conftest import assert_fix_repairs, findings_of, only_finding

OWN = "user_id = (select nullif(current_setting('app.user_id', true), ''))"


def test_rls_not_enabled_fires_when_rls_is_disabled(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE task DISABLE ROW LEVEL SECURITY")
    finding = only_finding(conn, "rls_not_enabled")
    assert (finding.object, finding.severity) == ("public.task", Severity.ERROR)
    assert_fix_repairs(conn, finding)


def test_rls_not_enabled_fires_on_a_new_tenant_table(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE note (user_id text NOT NULL, body text)")
    finding = only_finding(conn, "rls_not_enabled")
    assert (finding.object, finding.severity) == ("public.note", Severity.ERROR)


def test_rls_not_forced_fires_when_force_is_off(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE task NO FORCE ROW LEVEL SECURITY")
    finding = only_finding(conn, "rls_not_forced")
    assert (finding.object, finding.severity) == ("public.task", Severity.ERROR)
    assert_fix_repairs(conn, finding)


def test_rls_enabled_no_policy_fires_when_every_policy_is_dropped(
    conn: psycopg.Connection,
) -> None:
    for command in ("select", "insert", "update", "delete"):
        conn.execute(f"DROP POLICY task_{command}_own ON task")
    finding = only_finding(conn, "rls_enabled_no_policy")
    assert (finding.object, finding.severity) == ("public.task", Severity.ERROR)
    assert_fix_repairs(conn, finding)


def test_policy_for_public_fires_on_a_policy_naming_no_role(conn: psycopg.Connection) -> None:
    conn.execute(f"CREATE POLICY task_read_any_role ON task FOR SELECT USING ({OWN})")
    finding = only_finding(conn, "policy_for_public")
    assert finding.object == "policy task_read_any_role on public.task"
    assert_fix_repairs(conn, finding)


def test_policy_always_true_fires_on_using_true(conn: psycopg.Connection) -> None:
    conn.execute("ALTER POLICY task_select_own ON task USING (true)")
    finding = only_finding(conn, "policy_always_true")
    assert (finding.object, finding.severity) == (
        "policy task_select_own on public.task",
        Severity.ERROR,
    )
    assert "USING (true)" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_policy_always_true_fires_on_a_constant_with_check(conn: psycopg.Connection) -> None:
    conn.execute("ALTER POLICY task_insert_own ON task WITH CHECK (1 = 1)")
    finding = only_finding(conn, "policy_always_true")
    assert "WITH CHECK" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_multiple_permissive_policies_fires_on_a_second_select_policy(
    conn: psycopg.Connection,
) -> None:
    conn.execute(
        "CREATE POLICY task_select_shared ON task FOR SELECT TO tasks_app"
        " USING (title LIKE 'shared:%')"
    )
    finding = only_finding(conn, "multiple_permissive_policies")
    assert finding.object == "public.task SELECT for tasks_app"
    assert "DROP POLICY task_select_shared ON public.task;" in finding.fix
    assert_fix_repairs(conn, finding)


def test_policy_per_row_call_fires_on_a_bare_current_setting(conn: psycopg.Connection) -> None:
    conn.execute(
        "ALTER POLICY task_select_own ON task"
        " USING (user_id = current_setting('app.user_id', true))"
    )
    finding = only_finding(conn, "policy_per_row_call")
    assert finding.object == "policy task_select_own on public.task"
    assert "current_setting()" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_policy_column_unindexed_fires_when_no_index_leads_with_user_id(
    conn: psycopg.Connection,
) -> None:
    conn.execute("DROP INDEX task_user_created_idx")
    finding = only_finding(conn, "policy_column_unindexed")
    assert finding.object == "public.task.user_id"
    assert finding.fix.startswith("CREATE INDEX CONCURRENTLY")
    # CONCURRENTLY cannot run inside the test's transaction; the index it builds is the same.
    conn.execute(finding.fix.replace(" CONCURRENTLY", "").encode())
    assert findings_of(conn, "policy_column_unindexed") == []


def test_runtime_role_owns_objects_fires_when_it_owns_a_tenant_table(
    conn: psycopg.Connection,
) -> None:
    conn.execute("ALTER TABLE task OWNER TO tasks_app")
    finding = only_finding(conn, "runtime_role_owns_objects")
    assert (finding.object, finding.severity) == ("table public.task", Severity.ERROR)
    assert "owns a tenant table" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_excess_table_privilege_fires_on_truncate(conn: psycopg.Connection) -> None:
    conn.execute("GRANT TRUNCATE ON task TO tasks_app")
    finding = only_finding(conn, "excess_table_privilege")
    assert (finding.object, finding.severity) == (
        "public.task TRUNCATE to tasks_app",
        Severity.ERROR,
    )
    assert "TRUNCATE" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_excess_table_privilege_fires_on_references_and_trigger_granted_to_public(
    conn: psycopg.Connection,
) -> None:
    conn.execute("GRANT REFERENCES, TRIGGER ON task TO PUBLIC")
    found = findings_of(conn, "excess_table_privilege")
    assert sorted(f.object for f in found) == [
        "public.task REFERENCES to tasks_app",
        "public.task TRIGGER to tasks_app",
    ]
    for finding in found:
        assert_fix_repairs(conn, finding)


def test_update_of_immutable_column_fires_on_update_of_user_id(conn: psycopg.Connection) -> None:
    conn.execute("GRANT UPDATE (user_id) ON task TO tasks_app")
    finding = only_finding(conn, "update_of_immutable_column")
    assert finding.object == "public.task (user_id)"
    assert_fix_repairs(conn, finding)
    still_updatable = conn.execute(
        "SELECT has_column_privilege('tasks_app', 'task', 'title', 'UPDATE')"
    ).fetchone()
    assert still_updatable == (True,)


def test_update_of_immutable_column_fires_on_a_table_wide_update_grant(
    conn: psycopg.Connection,
) -> None:
    conn.execute("GRANT UPDATE ON task TO tasks_app")
    finding = only_finding(conn, "update_of_immutable_column")
    assert finding.object == "public.task (id, user_id, created_at)"
    assert_fix_repairs(conn, finding)


def test_security_definer_executable_fires_on_a_definer_function(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE FUNCTION count_every_task() RETURNS bigint LANGUAGE sql SECURITY DEFINER"
        " AS 'SELECT count(*) FROM task'"
    )
    finding = only_finding(conn, "security_definer_executable")
    assert finding.object == "function public.count_every_task()"
    assert_fix_repairs(conn, finding)


def test_view_without_security_invoker_fires_on_a_readable_view(conn: psycopg.Connection) -> None:
    conn.execute("CREATE VIEW open_tasks AS SELECT * FROM task WHERE NOT completed")
    conn.execute("GRANT SELECT ON open_tasks TO tasks_app")
    finding = only_finding(conn, "view_without_security_invoker")
    assert (finding.object, finding.severity) == ("view public.open_tasks", Severity.ERROR)
    assert_fix_repairs(conn, finding)


def test_view_without_security_invoker_fires_on_a_materialized_view(
    conn: psycopg.Connection,
) -> None:
    conn.execute("CREATE MATERIALIZED VIEW task_copy AS SELECT * FROM task")
    conn.execute("GRANT SELECT ON task_copy TO tasks_app")
    finding = only_finding(conn, "view_without_security_invoker")
    assert finding.object == "materialized view public.task_copy"
    assert_fix_repairs(conn, finding)


def test_policy_always_true_fires_when_or_true_defeats_the_tenant_check(
    conn: psycopg.Connection,
) -> None:
    conn.execute(f"ALTER POLICY task_select_own ON task USING ({OWN} OR true)")
    finding = only_finding(conn, "policy_always_true")
    assert "simplifies it to true" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_policy_always_true_fires_on_a_condition_that_never_looks_at_the_row(
    conn: psycopg.Connection,
) -> None:
    conn.execute(
        "ALTER POLICY task_delete_own ON task"
        " USING (current_setting('app.user_id', true) IS NOT NULL)"
    )
    finding = only_finding(conn, "policy_always_true")
    assert (finding.object, finding.severity) == (
        "policy task_delete_own on public.task",
        Severity.ERROR,
    )
    assert "never looks at the row" in finding.explanation
    assert_fix_repairs(conn, finding)

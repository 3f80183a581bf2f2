"""Splinter's lints that apply to a schema like ours, each fired by exactly its breakage."""

from __future__ import annotations

import psycopg

from db.audit import Severity
from tests.audit.conftest import assert_fix_repairs, findings_of, only_finding


def test_policy_exists_rls_disabled_fires_when_rls_is_turned_off_under_policies(
    conn: psycopg.Connection,
) -> None:
    conn.execute("ALTER TABLE task DISABLE ROW LEVEL SECURITY")
    finding = only_finding(conn, "policy_exists_rls_disabled")
    assert (finding.object, finding.severity) == ("public.task", Severity.ERROR)
    assert "4 policies defined" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_policy_exists_rls_disabled_is_quiet_on_a_table_without_policies(
    conn: psycopg.Connection,
) -> None:
    conn.execute("CREATE TABLE scratch_note (id int PRIMARY KEY)")
    assert findings_of(conn, "policy_exists_rls_disabled") == []


def test_no_primary_key_fires_on_a_table_without_one(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE audit_log (at timestamptz, body text)")
    finding = only_finding(conn, "no_primary_key")
    assert (finding.object, finding.severity) == ("public.audit_log", Severity.WARN)


def test_duplicate_index_fires_on_a_second_copy_of_the_list_index(
    conn: psycopg.Connection,
) -> None:
    conn.execute("CREATE INDEX task_list_copy ON task (user_id, created_at DESC, id)")
    finding = only_finding(conn, "duplicate_index")
    assert finding.object == "public.task (public.task_list_copy, public.task_user_created_idx)"
    # DROP INDEX CONCURRENTLY cannot run inside the test's transaction; the plain form can.
    conn.execute(finding.fix.replace(" CONCURRENTLY", "").encode())
    assert findings_of(conn, "duplicate_index") == []


def test_duplicate_index_keeps_the_index_behind_a_constraint(conn: psycopg.Connection) -> None:
    conn.execute("CREATE UNIQUE INDEX task_id_copy ON task (id)")
    finding = only_finding(conn, "duplicate_index")
    assert finding.fix == "DROP INDEX CONCURRENTLY public.task_id_copy;"


def test_duplicate_index_is_quiet_on_indexes_that_differ_in_order(
    conn: psycopg.Connection,
) -> None:
    conn.execute("CREATE INDEX task_created_user ON task (created_at, user_id)")
    assert findings_of(conn, "duplicate_index") == []


def test_function_search_path_mutable_fires_on_a_function_without_one(
    conn: psycopg.Connection,
) -> None:
    conn.execute("CREATE FUNCTION task_count() RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint'")
    finding = only_finding(conn, "function_search_path_mutable")
    assert (finding.object, finding.severity) == ("function task_count()", Severity.WARN)
    assert_fix_repairs(conn, finding)

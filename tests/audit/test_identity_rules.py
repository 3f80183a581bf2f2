"""The identity rules judge each policy's parse tree: they fire on a policy that lets rows
through without binding them to the caller, name the hole, and their fix closes it."""

from __future__ import annotations

import psycopg
import pytest

from db.audit import Severity
from db.audit.identity import judge_identity
from tests.audit.conftest import assert_fix_repairs, findings_of, only_finding

OWN = "user_id = (select nullif(current_setting('app.user_id', true), ''))"
IDENTITY = "(select nullif(current_setting('app.user_id', true), ''))"


def test_not_bound_fires_on_a_check_that_never_compares_with_the_identity(
    conn: psycopg.Connection,
) -> None:
    conn.execute("ALTER POLICY task_insert_own ON task WITH CHECK (user_id IS NOT NULL)")
    finding = only_finding(conn, "policy_not_bound_to_identity")
    assert (finding.object, finding.severity) == (
        "policy task_insert_own on public.task",
        Severity.ERROR,
    )
    assert "WITH CHECK" in finding.explanation
    assert "never compares user_id with the caller's identity" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_not_bound_fires_on_a_using_that_reads_only_other_columns(
    conn: psycopg.Connection,
) -> None:
    conn.execute("ALTER POLICY task_delete_own ON task USING (completed)")
    finding = only_finding(conn, "policy_not_bound_to_identity")
    assert finding.object == "policy task_delete_own on public.task"
    assert_fix_repairs(conn, finding)


def test_not_bound_fires_when_the_identity_is_compared_only_in_an_or_branch(
    conn: psycopg.Connection,
) -> None:
    conn.execute(f"ALTER POLICY task_select_own ON task USING ({OWN} OR completed)")
    finding = only_finding(conn, "policy_not_bound_to_identity")
    assert "only in one branch of an OR" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_not_bound_is_quiet_when_the_binding_is_one_of_several_mandatory_conjuncts(
    conn: psycopg.Connection,
) -> None:
    conn.execute(f"ALTER POLICY task_select_own ON task USING (NOT completed AND {OWN})")
    assert findings_of(conn, "policy_not_bound_to_identity") == []


def test_not_bound_is_quiet_on_a_restrictive_policy_which_only_narrows(
    conn: psycopg.Connection,
) -> None:
    conn.execute(
        "CREATE POLICY task_hide_done ON task AS RESTRICTIVE FOR SELECT TO tasks_app"
        " USING (NOT completed)"
    )
    assert findings_of(conn, "policy_not_bound_to_identity") == []


def test_not_bound_accepts_the_identity_without_nullif_or_subquery(
    conn: psycopg.Connection,
) -> None:
    """`user_id = current_setting(...)` still binds (policy_per_row_call reports its cost)."""
    conn.execute(
        "ALTER POLICY task_select_own ON task"
        " USING (current_setting('app.user_id', true)::text = user_id)"
    )
    assert findings_of(conn, "policy_not_bound_to_identity") == []


def test_null_identity_disjunct_fires_on_splinters_or_is_null_escape(
    conn: psycopg.Connection,
) -> None:
    conn.execute(f"ALTER POLICY task_select_own ON task USING ({OWN} OR {IDENTITY} IS NULL)")
    finding = only_finding(conn, "null_identity_disjunct")
    assert (finding.object, finding.severity) == (
        "policy task_select_own on public.task",
        Severity.ERROR,
    )
    assert "a transaction with no identity reaches every tenant's rows" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_null_identity_disjunct_fires_on_an_empty_identity_branch(
    conn: psycopg.Connection,
) -> None:
    conn.execute(
        f"ALTER POLICY task_update_own ON task USING ({OWN})"
        f" WITH CHECK ({OWN} OR current_setting('app.user_id', true) = '')"
    )
    finding = only_finding(conn, "null_identity_disjunct")
    assert "WITH CHECK" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_null_identity_disjunct_is_quiet_when_the_null_test_is_a_mandatory_conjunct(
    conn: psycopg.Connection,
) -> None:
    conn.execute(f"ALTER POLICY task_select_own ON task USING ({OWN} AND {IDENTITY} IS NOT NULL)")
    assert findings_of(conn, "null_identity_disjunct") == []


def test_the_null_escape_is_not_also_reported_as_unbound(conn: psycopg.Connection) -> None:
    conn.execute(f"ALTER POLICY task_select_own ON task USING ({OWN} OR {IDENTITY} IS NULL)")
    assert findings_of(conn, "policy_not_bound_to_identity") == []


def test_wildcard_fires_on_like_with_a_percent_fallback(conn: psycopg.Connection) -> None:
    conn.execute(
        "ALTER POLICY task_select_own ON task"
        " USING (user_id LIKE coalesce(current_setting('app.user_id', true), '%'))"
    )
    finding = only_finding(conn, "identity_wildcard_match")
    assert (finding.object, finding.severity) == (
        "policy task_select_own on public.task",
        Severity.ERROR,
    )
    assert "an identity of '%' (or none at all)" in finding.explanation
    assert_fix_repairs(conn, finding)


def test_wildcard_fires_on_the_identity_used_as_a_pattern(conn: psycopg.Connection) -> None:
    conn.execute(f"ALTER POLICY task_delete_own ON task USING (user_id ILIKE {IDENTITY})")
    assert only_finding(conn, "identity_wildcard_match").object == (
        "policy task_delete_own on public.task"
    )


def test_wildcard_fires_on_a_fallback_to_the_row_itself(conn: psycopg.Connection) -> None:
    conn.execute(
        "ALTER POLICY task_select_own ON task"
        " USING (user_id = coalesce(current_setting('app.user_id', true), user_id))"
    )
    finding = only_finding(conn, "identity_wildcard_match")
    assert_fix_repairs(conn, finding)


def test_wildcard_is_quiet_on_a_pattern_that_does_not_come_from_the_identity(
    conn: psycopg.Connection,
) -> None:
    conn.execute(f"ALTER POLICY task_select_own ON task USING ({OWN} AND title LIKE 'a%')")
    assert findings_of(conn, "identity_wildcard_match") == []


@pytest.mark.parametrize(
    "expression",
    [
        OWN,
        f"({OWN})",
        "user_id = (SELECT NULLIF(current_setting('app.user_id'::text, true), ''::text))",
        "pg_catalog.current_setting('app.user_id', true) = user_id",
    ],
)
def test_every_spelling_of_the_binding_is_read_as_one(expression: str) -> None:
    verdict = judge_identity(expression)
    assert (verdict.bound, verdict.null_escapes, verdict.wildcards) == (True, (), ())


def test_another_setting_is_not_the_identity() -> None:
    assert not judge_identity("user_id = current_setting('app.tenant', true)").compares

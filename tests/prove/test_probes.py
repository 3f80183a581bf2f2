"""Each hole opened in a policy turns exactly the cells it lets through, and names them.

The expected cells are what the hole admits by PostgreSQL's rules, written out per breakage:
the proof must find those and nothing else. Every run is also checked to leave no trace.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from db.prove import Access
from tests.audit.conftest import findings_of
from tests.prove.conftest import OWN, holes, prove_leaving_no_trace

NOT_OWN = ("other", "none", "empty")
NULL_IDENTITY = "(select nullif(current_setting('app.user_id', true), '')) IS NULL"


def cells(command: str, identities: tuple[str, ...] = NOT_OWN) -> set[tuple[str, str, str]]:
    return {("public.task", command, identity) for identity in identities}


BREAKAGES = {
    "select policy USING (true)": (
        ["ALTER POLICY task_select_own ON task USING (true)"],
        cells("select"),
    ),
    "insert policy WITH CHECK (true)": (
        ["ALTER POLICY task_insert_own ON task WITH CHECK (true)"],
        cells("insert"),
    ),
    "update policy USING (true) WITH CHECK (true)": (
        ["ALTER POLICY task_update_own ON task USING (true) WITH CHECK (true)"],
        cells("update"),
    ),
    "delete policy USING (true)": (
        ["ALTER POLICY task_delete_own ON task USING (true)"],
        cells("delete"),
    ),
    "row level security disabled": (
        ["ALTER TABLE task DISABLE ROW LEVEL SECURITY"],
        cells("select") | cells("insert") | cells("update") | cells("delete"),
    ),
    # A pooled connection reads '' where the name was set before: none and empty both escape.
    "null-identity escape on select": (
        [f"ALTER POLICY task_select_own ON task USING ({OWN} OR {NULL_IDENTITY})"],
        cells("select", ("none", "empty")),
    ),
    "update WITH CHECK (true) plus UPDATE (user_id)": (
        [
            f"ALTER POLICY task_update_own ON task USING ({OWN}) WITH CHECK (true)",
            "GRANT UPDATE (user_id) ON task TO tasks_app",
        ],
        cells("update-owner", ("own",)),
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_an_opened_hole_turns_exactly_the_cells_it_lets_through(
    conn: psycopg.Connection[Any], breakage: str
) -> None:
    statements, expected_holes = BREAKAGES[breakage]
    for statement in statements:
        conn.execute(statement)
    assert holes(prove_leaving_no_trace(conn)) == expected_holes


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_every_violation_says_the_hole_allowed_what_policies_deny(
    conn: psycopg.Connection[Any], breakage: str
) -> None:
    for statement in BREAKAGES[breakage][0]:
        conn.execute(statement)
    violations = prove_leaving_no_trace(conn).violations
    assert {(c.expected, c.actual) for c in violations} == {(Access.DENIED, Access.ALLOWED)}


def test_an_update_policy_open_only_in_with_check_is_still_held_by_the_column_grants(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(f"ALTER POLICY task_update_own ON task USING ({OWN}) WITH CHECK (true)")
    proof = prove_leaving_no_trace(conn)
    assert proof.violations == ()
    moves = [c for c in proof.cells if c.table == "public.task" and c.command == "update-owner"]
    assert {c.denied_by for c in moves} == {"privilege"}


def test_an_update_policy_open_only_in_using_is_still_held_by_its_with_check(
    conn: psycopg.Connection[Any],
) -> None:
    """Rewriting another user's row keeps its user_id, which WITH CHECK then refuses."""
    conn.execute(f"ALTER POLICY task_update_own ON task USING (true) WITH CHECK ({OWN})")
    proof = prove_leaving_no_trace(conn)
    assert proof.violations == ()
    updates = [
        c
        for c in proof.cells
        if (c.table, c.command) == ("public.task", "update") and c.identity != "own"
    ]
    assert {c.denied_by for c in updates} == {"policy"}


def test_the_targeted_update_alone_would_miss_an_open_update_policy(
    conn: psycopg.Connection[Any],
) -> None:
    """The reason for the unqualified form: WHERE reads user_id, so the SELECT policy hides
    the other user's rows and `UPDATE ... WHERE user_id = <other>` touches none of them."""
    conn.execute("ALTER POLICY task_update_own ON task USING (true) WITH CHECK (true)")
    with conn.transaction(force_rollback=True):
        conn.execute("SELECT set_config('role', 'tasks_app', true)")
        targeted = conn.execute("UPDATE task SET title = 'x' WHERE user_id = 'real-alice'")
        assert targeted.rowcount == 0
        unqualified = conn.execute("UPDATE task SET title = 'x'")
        assert unqualified.rowcount > 0


def test_a_dropped_insert_policy_denies_the_owner_and_leaves_the_rest_untested(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("DROP POLICY task_insert_own ON task")
    proof = prove_leaving_no_trace(conn)
    task = [c for c in proof.cells if c.table == "public.task"]
    insert_own = next(c for c in task if (c.command, c.identity) == ("insert", "own"))
    assert (insert_own.actual, insert_own.denied_by) == (Access.DENIED, "policy")
    assert {c.actual for c in task if c.command != "insert"} == {Access.UNTESTED}


def test_a_dropped_select_policy_denies_the_owner_its_own_rows(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("DROP POLICY task_select_own ON task")
    assert ("public.task", "select", "own") in holes(prove_leaving_no_trace(conn))


def test_a_revoked_select_is_reported_as_the_owner_denied_by_privilege(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("REVOKE SELECT ON task FROM tasks_app")
    proof = prove_leaving_no_trace(conn)
    select_own = next(
        c
        for c in proof.cells
        if (c.table, c.command, c.identity) == ("public.task", "select", "own")
    )
    assert (select_own.actual, select_own.denied_by) == (Access.DENIED, "privilege")


def test_none_is_probed_as_a_pooled_connection_sees_an_unset_identity(
    conn: psycopg.Connection[Any],
) -> None:
    """Once a session has set app.user_id, PostgreSQL reads it back as '' when unset."""
    assert prove_leaving_no_trace(conn).none_reads_as == "''"


def test_an_escape_only_a_fresh_session_opens_is_left_to_the_audit(
    conn: psycopg.Connection[Any],
) -> None:
    """`current_setting(...) IS NULL` without nullif opens only a session that never set the
    name; prove must set it to create its rows, so the static rule is what names this one."""
    conn.execute(
        f"ALTER POLICY task_select_own ON task"
        f" USING ({OWN} OR current_setting('app.user_id', true) IS NULL)"
    )
    assert holes(prove_leaving_no_trace(conn)) == set()
    assert findings_of(conn, "null_identity_disjunct")

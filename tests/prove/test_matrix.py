"""The expected column is policies/ itself: what it declares, and nothing kept beside it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from db import catalog
from db.catalog import ColumnGrant, PolicyRow, SecuritySnapshot, TableGrant
from db.prove import Access
from db.prove.matrix import COMMANDS, IDENTITIES, expected_access, own_allowed
from tests.prove.conftest import holes, prove_leaving_no_trace

OWN = "(user_id = 'x')"


def snapshot(policies: tuple[PolicyRow, ...], grants: tuple[Any, ...]) -> SecuritySnapshot:
    return SecuritySnapshot(
        policies=policies,
        rls_flags=(),
        table_grants=tuple(g for g in grants if isinstance(g, TableGrant)),
        column_grants=tuple(g for g in grants if isinstance(g, ColumnGrant)),
        role=None,
    )


def policy(command: str, permissive: str = "PERMISSIVE") -> PolicyRow:
    return PolicyRow(
        "note", f"note_{command.lower()}", permissive, ("tasks_app",), command, OWN, OWN
    )


def test_a_command_is_the_owners_only_with_both_its_policy_and_its_privilege() -> None:
    declared = snapshot(
        (policy("SELECT"), policy("DELETE")),
        (TableGrant("note", "tasks_app", "SELECT", False),),
    )
    assert own_allowed(declared, "note", "tasks_app") == {"select"}


def test_a_policy_for_all_commands_counts_for_each() -> None:
    declared = snapshot(
        (policy("ALL"),),
        (
            TableGrant("note", "tasks_app", "DELETE", False),
            ColumnGrant("note", "user_id", "tasks_app", "INSERT", False),
            ColumnGrant("note", "body", "tasks_app", "UPDATE", False),
        ),
    )
    assert own_allowed(declared, "note", "tasks_app") == {"insert", "update", "delete"}


def test_a_restrictive_policy_alone_admits_nothing() -> None:
    declared = snapshot(
        (policy("SELECT", "RESTRICTIVE"),), (TableGrant("note", "tasks_app", "SELECT", False),)
    )
    assert own_allowed(declared, "note", "tasks_app") == frozenset()


def test_an_update_grant_on_user_id_alone_is_not_an_update_of_the_row() -> None:
    declared = snapshot(
        (policy("UPDATE"),), (ColumnGrant("note", "user_id", "tasks_app", "UPDATE", False),)
    )
    assert own_allowed(declared, "note", "tasks_app") == frozenset()


@pytest.mark.parametrize("identity", [i for i in IDENTITIES if i != "own"])
@pytest.mark.parametrize("command", COMMANDS)
def test_anyone_but_the_owner_is_always_expected_to_be_denied(command: str, identity: str) -> None:
    assert expected_access(frozenset(COMMANDS), command, identity) is Access.DENIED


def test_moving_a_row_to_another_user_is_never_expected_even_of_its_owner() -> None:
    assert expected_access(frozenset(COMMANDS) - {"update-owner"}, "update-owner", "own") is (
        Access.DENIED
    )


def test_the_expectation_follows_the_policy_files(
    conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declare no delete policy for task: the live one now lets its owner do more than declared."""
    for path in catalog.policy_files():
        shutil.copy(path, tmp_path / path.name)
    task_sql = (tmp_path / "task.sql").read_text()
    start = task_sql.index("CREATE POLICY task_delete_own")
    (tmp_path / "task.sql").write_text(
        task_sql[:start] + task_sql[task_sql.index(";", start) + 1 :]
    )
    monkeypatch.setattr(catalog, "POLICIES_DIR", tmp_path)
    assert holes(prove_leaving_no_trace(conn)) == {("public.task", "delete", "own")}

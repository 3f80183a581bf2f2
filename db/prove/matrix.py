"""The access matrix: what `policies/` says each identity may do to each tenant table, and cells.

The expectation is derived from the declaration itself (db.catalog.declared_snapshot applies
policies/ to scratch copies of the tables), never from a second hand-kept table: a command is
allowed to the row's owner exactly when policies/ declares both a permissive policy for it and
the privilege it needs, and denied to everyone else. Moving a row to another user is never
allowed: a policy that binds rows to the caller cannot also let them leave.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from db.catalog import SecuritySnapshot

COMMANDS = ("select", "insert", "update", "update-owner", "delete")
IDENTITIES = ("own", "other", "none", "empty")


class Access(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    # The table's rows could not be created (its owner may not insert), so nothing was tried.
    UNTESTED = "untested"


@dataclass(frozen=True)
class Cell:
    table: str
    command: str
    identity: str
    expected: Access
    actual: Access
    # Which layer stopped it: "privilege" (grants), "policy" (a WITH CHECK refused the row),
    # "rows" (row-level security hid every target row); None when allowed or untested.
    denied_by: str | None = None

    @property
    def holds(self) -> bool:
        return self.expected is self.actual

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "command": self.command,
            "identity": self.identity,
            "expected": self.expected.value,
            "actual": self.actual.value,
            "denied_by": self.denied_by,
        }


@dataclass(frozen=True)
class Proof:
    cells: tuple[Cell, ...]
    # What current_setting('app.user_id', true) returned to the `none` probes: '' or NULL.
    none_reads_as: str = "''"

    @property
    def violations(self) -> tuple[Cell, ...]:
        return tuple(cell for cell in self.cells if not cell.holds)

    def as_json(self) -> dict[str, Any]:
        return {
            "cells": [cell.as_json() for cell in self.cells],
            "violations": [cell.as_json() for cell in self.violations],
        }


def _declared_privileges(declared: SecuritySnapshot, table: str, role: str) -> dict[str, set[str]]:
    """Privilege -> the columns it covers ("*" for a table-level grant), to role or PUBLIC."""
    grantees = {role, "PUBLIC"}
    covered: dict[str, set[str]] = {}
    for grant in declared.table_grants:
        if grant.table == table and grant.grantee in grantees:
            covered.setdefault(grant.privilege, set()).add("*")
    for column_grant in declared.column_grants:
        if column_grant.table == table and column_grant.grantee in grantees:
            covered.setdefault(column_grant.privilege, set()).add(column_grant.column)
    return covered


def own_allowed(declared: SecuritySnapshot, table: str, role: str) -> frozenset[str]:
    """The commands policies/ lets a row's owner run on its own rows of `table`."""
    commands = {
        p.command
        for p in declared.policies
        if p.table == table and p.permissive == "PERMISSIVE" and {role, "public"} & set(p.roles)
    }
    privileges = _declared_privileges(declared, table, role)

    def policy_for(command: str) -> bool:
        return command.upper() in commands or "ALL" in commands

    allowed = set()
    if policy_for("select") and privileges.get("SELECT"):
        allowed.add("select")
    if policy_for("insert") and privileges.get("INSERT", set()) & {"*", "user_id"}:
        allowed.add("insert")
    if policy_for("update") and privileges.get("UPDATE", set()) - {"user_id"}:
        allowed.add("update")
    if policy_for("delete") and privileges.get("DELETE"):
        allowed.add("delete")
    return frozenset(allowed)


def expected_access(own: frozenset[str], command: str, identity: str) -> Access:
    return Access.ALLOWED if identity == "own" and command in own else Access.DENIED

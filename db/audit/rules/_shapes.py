"""What several rules say the same way: how they name a policy, the fix SQL they share, and the
runtime-role attribute rules' one shape.

Each fix has one home so that two rules reporting the same hole offer the same repair.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from db.audit.rule import Context, Hole, Rule, Severity


def policy_object(policy: str, table: str) -> str:
    return f"policy {policy} on {table}"


def policy_clauses(using: str | None, with_check: str | None) -> Iterator[tuple[str, str]]:
    """A policy's expressions by clause; an absent one admits nothing of its own to judge."""
    for clause, expression in (("USING", using), ("WITH CHECK", with_check)):
        if expression is not None:
            yield clause, expression


def enable_rls(table: str) -> str:
    """ENABLE alone would still let the owner through: FORCE is part of the repair."""
    return f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n{force_rls(table)}"


def force_rls(table: str) -> str:
    return f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"


def revoke_from_runtime_role(
    ctx: Context, privilege: str, table: str, keep: Sequence[str] = ()
) -> str:
    """Revoke a table-level grant (which covers every column) from the runtime role and PUBLIC,
    then grant back the columns `keep` names, the ones policies/ means it to hold."""
    revoke = f"REVOKE {privilege} ON {table} FROM {ctx.role}, PUBLIC;"
    if not keep:
        return revoke
    return f"{revoke}\nGRANT {privilege} ({', '.join(keep)}) ON {table} TO {ctx.role};"


def drop_role_attribute(role: str, attribute: str) -> str:
    return f"ALTER ROLE {role} NO{attribute};"


def runtime_role_attribute_rule(
    id: str, summary: str, query: str, attribute: str, explanation: str
) -> Rule:
    """A rule whose `query` returns the quoted runtime role when it holds `attribute`: holding
    it is an ERROR, repaired by dropping the attribute."""

    def holds_attribute(ctx: Context, role: str) -> Hole:
        return Hole(
            Severity.ERROR, f"role {role}", explanation, drop_role_attribute(role, attribute)
        )

    return Rule.per_row(id, summary, query, holds_attribute)

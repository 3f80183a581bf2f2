"""What the identity rules (r18..r20) share: the policies they judge, the fix they offer, and
their shape (each judged clause it explains is an ERROR on that policy).

Only permissive policies that apply to the runtime role (by name or through PUBLIC) on tenant
tables can let rows through for a request; restrictive policies only narrow what those admit.
For UPDATE without a WITH CHECK, PostgreSQL checks new rows with USING, so USING is judged once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from db.audit.identity import IdentityVerdict, judge_identity
from db.audit.rule import OWN_ROWS, Context, Hole, Rule, Severity
from db.audit.rules._shapes import policy_clauses, policy_object

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname), quote_ident(p.polname),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND p.polpermissive
  AND (0::oid = ANY(p.polroles)
       OR (SELECT oid FROM pg_roles WHERE rolname = %(role)s) = ANY(p.polroles))
ORDER BY 1, 2
"""


class JudgedClause(NamedTuple):
    table: str
    policy: str
    clause: str  # "USING" or "WITH CHECK"
    expression: str
    verdict: IdentityVerdict

    @property
    def object(self) -> str:
        return policy_object(self.policy, self.table)

    @property
    def fix(self) -> str:
        return f"ALTER POLICY {self.policy} ON {self.table} {self.clause} ({OWN_ROWS});"


def judged_clauses(ctx: Context) -> Iterator[JudgedClause]:
    for table, policy, using, with_check in ctx.rows(SQL):
        for clause, expression in policy_clauses(using, with_check):
            yield JudgedClause(table, policy, clause, expression, judge_identity(expression))


def identity_rule(
    id: str, summary: str, lets_through: Callable[[JudgedClause], str | None]
) -> Rule:
    """A rule that explains what a judged clause lets through, or returns None for a clause
    whose hole is not this rule's to name."""

    def holes(ctx: Context) -> Iterator[Hole]:
        for judged in judged_clauses(ctx):
            explanation = lets_through(judged)
            if explanation is not None:
                yield Hole(Severity.ERROR, judged.object, explanation, judged.fix)

    return Rule.from_holes(id, summary, holes)
